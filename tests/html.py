"""Assertions on a page's elements (ids, roles, tags and attributes, text), not on raw markup.

    doc = page(response)
    assert doc.by_id("vm-state").text == "running"
    row = doc.one("tr", data_vm_id="vm1")
    assert row.form("/vms/vm1/stop").button().text == "Stop"
    assert doc.alerts() == ["VM vm1 is stopped: cannot stop it"]

Built on the standard library's html.parser: entities are decoded in text and attribute
values, so a test compares what a reader sees. Keyword filters name attributes with `_` for
`-` (data_vm_id= is data-vm-id=), `class_` matches class tokens, True means "present", and a
callable is a test on the value.
"""

from html.parser import HTMLParser

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
}
NOT_TEXT = {"script", "style", "template"}


class Element:
    """One element of a parsed page, with its attributes, children and text."""

    def __init__(self, tag, attrs, parent=None):
        self.tag, self.parent, self.children = tag, parent, []
        self.attrs = {name: "" if value is None else value for name, value in attrs}

    def __repr__(self):
        shown = " ".join(f'{k}="{v}"' for k, v in self.attrs.items())
        return f"<{self.tag}{' ' + shown if shown else ''}>"

    def __getitem__(self, name):
        return self.attrs[name]

    def get(self, name, default=None):
        """An attribute's value, or default when the element has none."""
        return self.attrs.get(name, default)

    def has(self, name):
        """Whether the element carries an attribute (a boolean one like disabled too)."""
        return name in self.attrs

    @property
    def classes(self):
        """The element's class tokens."""
        return set(self.get("class", "").split())

    @property
    def id(self):
        return self.get("id")

    # ------------------------------------------------------------------ text

    def _pieces(self, hidden):
        for child in self.children:
            if isinstance(child, str):
                yield child
            elif hidden or child.tag not in NOT_TEXT:
                yield from child._pieces(hidden)

    @property
    def raw_text(self):
        """The text inside the element exactly as written (scripts and templates included)."""
        return "".join(self._pieces(hidden=True))

    @property
    def text(self):
        """The text a reader sees inside the element, whitespace collapsed to single spaces."""
        return " ".join("".join(self._pieces(hidden=False)).split())

    # ------------------------------------------------------------------ finding

    def iter(self):
        """Every element below this one, in document order."""
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def matches(self, tag=None, text=None, **attrs):
        """Whether this element has the tag, attributes (see the module doc) and text."""
        if tag is not None and self.tag != tag:
            return False
        for key, wanted in attrs.items():
            name = "class" if key == "class_" else key.replace("_", "-")
            if name not in self.attrs:
                if wanted is False:
                    continue
                return False
            value = self.attrs[name]
            if wanted is False:
                return False
            if wanted is True:
                continue
            if callable(wanted):
                if not wanted(value):
                    return False
            elif name == "class":
                if not set(wanted.split()) <= self.classes:
                    return False
            elif value != wanted:
                return False
        if text is not None:
            return text(self.text) if callable(text) else self.text == text
        return True

    def find_all(self, tag=None, text=None, **attrs):
        """Every element below this one that matches (see matches)."""
        return [el for el in self.iter() if el.matches(tag, text, **attrs)]

    def find(self, tag=None, text=None, **attrs):
        """The first matching element below this one, or None."""
        return next((el for el in self.iter() if el.matches(tag, text, **attrs)), None)

    def one(self, tag=None, text=None, **attrs):
        """The one matching element below this one; fails when there are none or several."""
        found = self.find_all(tag, text, **attrs)
        wanted = " ".join(
            [tag or "*"]
            + [f"{k}={v!r}" for k, v in attrs.items()]
            + ([f"text={text!r}"] if text else [])
        )
        assert found, f"no element {wanted} in {self!r}"
        assert len(found) == 1, f"{len(found)} elements {wanted} in {self!r}: {found}"
        return found[0]

    def has_element(self, tag=None, text=None, **attrs):
        """Whether any element below this one matches."""
        return self.find(tag, text, **attrs) is not None

    def by_id(self, element_id):
        """The element with this id; fails when there is none."""
        return self.one(id=element_id)

    def ancestor(self, tag=None, **attrs):
        """The nearest enclosing element that matches, or None."""
        node = self.parent
        while node is not None and not node.matches(tag, **attrs):
            node = node.parent
        return node

    # ------------------------------------------------------------------ shortcuts

    def rows(self, **attrs):
        """The table rows (<tr>) below this element, filtered by attributes."""
        return self.find_all("tr", **attrs)

    def cells(self):
        """The texts of this row's cells (<td> and <th>)."""
        return [el.text for el in self.iter() if el.tag in ("td", "th")]

    def details(self):
        """{header text: cell} of the rows below this one that pair a <th> with a <td>."""
        found = {}
        for row in self.rows():
            header, cell = row.find("th"), row.find("td")
            if header is not None and cell is not None:
                found[header.text] = cell
        return found

    def pager(self):
        """The page's pagination (<nav aria-label="Pages">)."""
        return self.one("nav", aria_label="Pages")

    def links(self, href=None):
        """The <a href> elements below this one (with this href when given)."""
        return self.find_all("a", href=href if href is not None else True)

    def hrefs(self):
        """The href of every link below this one, in order."""
        return [a["href"] for a in self.links()]

    def link(self, href):
        """The one link to href."""
        return self.one("a", href=href)

    def forms(self, action=None, **attrs):
        """The forms below this one (posting to action when given)."""
        if action is not None:
            attrs["action"] = action
        return self.find_all("form", **attrs)

    def form(self, action, **attrs):
        """The one form posting to action."""
        return self.one("form", action=action, **attrs)

    def actions(self):
        """The action of every form below this one, in order."""
        return [form.get("action") for form in self.find_all("form")]

    def buttons(self):
        """Buttons below this one: <button> and <input type=submit|button>."""
        return [
            el
            for el in self.iter()
            if el.tag == "button" or (el.tag == "input" and el.get("type") in ("submit", "button"))
        ]

    def button(self, text=None):
        """The one button below this one (with this label when given)."""
        found = [b for b in self.buttons() if text is None or b.label == text]
        assert len(found) == 1, f"{len(found)} buttons {text or ''} in {self!r}"
        return found[0]

    def labels(self):
        """The labels of the buttons below this one, in order."""
        return [button.label for button in self.buttons()]

    @property
    def label(self):
        """A button's label: its text, or an input's value."""
        return self.get("value", "") if self.tag == "input" else self.text

    def options(self, name=None):
        """The <option> elements below this one (of the <select name=name> when given)."""
        scope = self.one("select", name=name) if name else self
        return scope.find_all("option")

    def field(self, name):
        """The one form field (input, select or textarea) of this name."""
        found = [
            el
            for el in self.iter()
            if el.tag in ("input", "select", "textarea") and el.matches(name=name)
        ]
        assert len(found) == 1, f"{len(found)} fields named {name!r} in {self!r}"
        return found[0]

    def alerts(self, category=None):
        """The texts of the flash messages (role="alert"), of one category when given."""
        wanted = f"alert-{category}" if category else "alert"
        return [el.text for el in self.find_all(role="alert", class_=wanted)]

    def alert(self, containing, category=None):
        """The one flash message whose text contains `containing` (of a category when given)."""
        found = [text for text in self.alerts(category) if containing in text]
        assert len(found) == 1, (
            f"{len(found)} {category or ''} alerts with {containing!r}: {self.alerts()}"
        )
        return found[0]

    def field_errors(self):
        """The texts of the form fields' error messages (.invalid-feedback)."""
        return [el.text for el in self.find_all(class_="invalid-feedback")]

    def scripts(self):
        """The src of every <script src> below this one."""
        return [el["src"] for el in self.find_all("script", src=True)]


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Page()
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.stack[-1])
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        element = Element(tag, attrs, self.stack[-1])
        self.stack[-1].children.append(element)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


class Page(Element):
    """A whole parsed document."""

    def __init__(self):
        super().__init__("#document", [])

    def __repr__(self):
        title = self.find("title")
        return f"<page {title.text!r}>" if title else "<page>"


def page(source):
    """Parse a Flask response (or its HTML text) into a Page."""
    text = source if isinstance(source, str) else source.get_data(as_text=True)
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser.root
