// One lint configuration for the whole tree (src, test, bench, bin). Why these rules:
// ARCHITECTURE.md, "Habits". Formatting is Prettier's (.prettierrc.json); ESLint checks only
// what Prettier cannot: code that is wrong, and lines Prettier cannot shorten (long strings).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier/flat';
import tseslint from 'typescript-eslint';

/** Prettier's printWidth (.prettierrc.json): Prettier wraps code to it, but not strings or comments. */
const WIDTH = 120;

export default defineConfig(
  globalIgnores(['dist/', 'bench/results/', 'test-artifacts/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  // Off: every rule about layout, which is Prettier's (max-len is turned on again below).
  prettier,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A test's title is one sentence that the runner prints; Prettier keeps it on the line of
      // test(...) however long, and so does this check.
      'max-len': [
        'error',
        {
          code: WIDTH,
          ignoreUrls: true,
          ignoreRegExpLiterals: true,
          ignorePattern: String.raw`^\s*(test|it|describe|suite)\(`,
        },
      ],
      // Bugs the type checker alone lets through.
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test runs what test() and describe() return itself; nothing is left unhandled.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // Type-only imports are erased, so an import's side effects never depend on how it is used.
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'separate-type-imports', disallowTypeAnnotations: false },
      ],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Re-throwing what was caught (an unknown) as a rejection keeps the original error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // A `let` assigned once, but read by a closure made before that assignment, cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Off, on purpose. Validators and escapers match control characters by design.
      'no-control-regex': 'off',
      // An async function without await still turns a throw into a rejection, as callers expect
      // of a Promise-returning interface (store, ops, test hooks); marking them is noise.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // better-sqlite3 types db.transaction(fn) as an object with methods (deferred, immediate,
    // ...) as well as a call signature; storing it is no unbound method.
    files: ['src/store/sqlite/**/*.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // Tests read JSON answers (untyped by nature) and assert on their fields: the assertion is
    // the check, so the rules against flowing `any` are off there, and only there.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain JavaScript outside the TypeScript project: the installed command and this file.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly' } },
  },
);
