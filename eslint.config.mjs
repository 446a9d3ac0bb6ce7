// Lint: typescript-eslint (type-aware), no floating promises, no import cycles, 120 columns.
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';

const LONG_LITERALS_ALLOWED = {
  code: 120,
  ignoreUrls: true,
  ignoreStrings: true,
  ignoreTemplateLiterals: true,
  ignoreRegExpLiterals: true,
};

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'test/fixtures/.build/**', 'coverage/**'],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs'] })],
      // no-cycle follows imports only into files it can parse
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Library internals are untyped: instrumentations read them through narrow duck types.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/no-require-imports': 'off',
      // Wrappers keep their own `this` (the library object) and reach the instrumentation by name.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['instrumentation', 'self'] }],
    },
  },
  {
    // expected messages are compared whole: a long string literal stays on its line
    files: ['test/**/*.ts'],
    rules: {
      'max-len': ['error', LONG_LITERALS_ALLOWED],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: {
      // fixture lines carry `// @line:name` markers that tests look up
      'max-len': ['error', { ...LONG_LITERALS_ALLOWED, ignoreTrailingComments: true }],
    },
  },
);
