// Lint: typescript-eslint (type-aware), no floating promises, no import cycles, 120 columns.
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'test/fixtures/.build/**',
      'coverage/**',
      // line-pinned fixtures, kept as written (see .prettierignore)
      'test/fixtures/typeorm-app.js',
      'test/fixtures/typeorm-esm.mjs',
      'test/fixtures/prisma-app.js',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    plugins: { 'import-x': importX },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js', '.mjs'] } } },
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
    files: ['**/*.js', '**/*.mjs'],
    rules: {
      // fixture lines carry `// @line:name` markers that tests look up
      'max-len': [
        'error',
        { code: 120, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreTrailingComments: true },
      ],
    },
  },
);
