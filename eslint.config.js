import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'drizzle/', 'coverage/', 'bench/out/', '.bench/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', crypto: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Config is read once in shared/config.ts; everything else takes it as an argument.
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read configuration through shared/config.ts' }],
    },
  },
  {
    // The pages run in browsers: their globals, and no process at all.
    files: ['web/src/**'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', localStorage: 'readonly', sessionStorage: 'readonly', fetch: 'readonly', EventSource: 'readonly', history: 'readonly', location: 'readonly' } },
  },
  {
    files: ['shared/config.ts', 'tests/**', 'bench/**', 'vitest.config.ts', 'drizzle.config.ts'],
    rules: { 'no-restricted-properties': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
