// ESLint for the dashboard's scripts (`make lint`): above all, names that are not defined
// anywhere (a call to a function that was removed fails here, not in an operator's browser).
// Each file is checked as the templates load it: console.js as a module (<script
// type="module">), the others as plain scripts sharing the page's globals.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["node_modules/"] },
  {
    files: ["*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      ...js.configs.recommended.rules,
      "no-undef": "error",
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["console.js"],
    languageOptions: { sourceType: "module" },
  },
];
