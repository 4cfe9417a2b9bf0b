// Lint for src/ and test/: typescript-eslint's type-checked recommended rules,
// run by `npm test` (npm run lint), so CI enforces them.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'test/bench/**', 'bin/**', 'eslint.config.js'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An async function without await is how a synchronous body's throw
      // becomes a rejection for callers that expect a promise (visitors,
      // handlers): deliberate here, not a forgotten await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests: tap queues a file's top-level t.test() calls itself (its
    // documented idiom, not a forgotten await), and decoded torrents are
    // deliberately untyped `any`, checked field by field by the assertions.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain-JavaScript helpers (no build step: the benchmarks import them
    // too) and their declarations sit outside tsconfig.test.json: lint them
    // without type information.
    files: ['test/**/*.mjs', 'test/**/*.d.mts'],
    ...tseslint.configs.disableTypeChecked,
  },
);
