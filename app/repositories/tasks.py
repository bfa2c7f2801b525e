"""The task columns hosts, VMs and volumes share: a compare-and-swap claim on `task`, and its release."""

# Only these tables have task/task_op columns; the name is never user input.
TABLES = ("hosts", "vms", "volumes")


class TaskColumns:
    """Task claims on one table."""

    def __init__(self, table):
        if table not in TABLES:
            raise ValueError(f"no task columns on {table}")
        self.table = table

    def claim(self, conn, row_id, task, operation_id, *, states=(), new_state=None):
        """Give the row a task if it has none and (states given) its state is one of them, and
        with new_state its new state, in one compare-and-swap; True when it was taken."""
        assignments, params = "task = ?, task_op = ?", [task, operation_id]
        if new_state is not None:
            assignments += ", state = ?"
            params.append(new_state)
        where, params = "id = ? AND task IS NULL", [*params, row_id]
        if states:
            where += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(states)
        cur = conn.execute(f"UPDATE {self.table} SET {assignments} WHERE {where}", params)
        return cur.rowcount == 1

    def set_operation(self, conn, row_id, operation_id):
        """Point the row's task at its operation."""
        conn.execute(f"UPDATE {self.table} SET task_op = ? WHERE id = ?", (operation_id, row_id))

    def release(self, conn, operation_id):
        """Clear every task this operation holds on the table (its target, a host's VMs...)."""
        conn.execute(
            f"UPDATE {self.table} SET task = NULL, task_op = NULL WHERE task_op = ?",
            (operation_id,),
        )

    def clear(self, conn, row_id, operation_id=None):
        """Clear the row's task (only if it is still this operation's, when given)."""
        sql = f"UPDATE {self.table} SET task = NULL, task_op = NULL WHERE id = ?"
        params = [row_id]
        if operation_id is not None:
            sql += " AND task_op = ?"
            params.append(operation_id)
        conn.execute(sql, params)
