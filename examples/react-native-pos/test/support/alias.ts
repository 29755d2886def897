/**
 * Test-only module aliases for rendering the app under Node. Import it FIRST in a test
 * file (tsx compiles these files to CommonJS, so imports run in order):
 *
 * - `react-native` → ./react-native.ts (host components as plain elements);
 * - `@outbox-sdk/react-native` → the package's backend-agnostic API (react-native/src/api:
 *   the same hooks, `OutboxProvider` and types as the package entry, without the JSI
 *   module); the tests open the Outbox with the N-API `createOutbox` and inject it;
 * - `react`, `react-test-renderer` (and their subpaths) → the package's dev copies
 *   (react-native/node_modules): the example installs nothing for its tests, and there is
 *   a single React.
 *
 * The app itself resolves all three normally (Metro, tsconfig paths for the type-check).
 */
import Module from 'node:module';
import { join, resolve } from 'node:path';

const PACKAGE = resolve(__dirname, '..', '..', '..', '..', 'react-native');

const targets: Record<string, string> = {
  'react-native': join(__dirname, 'react-native.ts'),
  '@outbox-sdk/react-native': join(PACKAGE, 'src', 'api', 'index.ts'),
};

/** Resolved from the package's dev dependencies: one React for the app, the hooks and the renderer. */
const FROM_PACKAGE = ['react', 'react-test-renderer'];

type Resolve = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string;
const M = Module as unknown as { _resolveFilename: Resolve };
const original = M._resolveFilename;

M._resolveFilename = function (request, parent, isMain, options) {
  const target = targets[request];
  if (target !== undefined) return original.call(this, target, parent, isMain, options);
  if (FROM_PACKAGE.some((m) => request === m || request.startsWith(`${m}/`))) return original.call(this, request, parent, isMain, { paths: [PACKAGE] });
  return original.call(this, request, parent, isMain, options);
};

/**
 * tsx applies react-native/tsconfig.json (`jsx: react-jsx`) only to the files it includes,
 * so it compiles the example's .tsx with esbuild's default classic runtime:
 * `React.createElement(...)` with no `React` in scope. Give those modules one, on the first
 * line (line numbers unchanged). The app is compiled by Metro/Babel with the automatic
 * runtime and never sees this.
 */
const EXAMPLE = resolve(__dirname, '..', '..');
const P = Module.prototype as unknown as { _compile(code: string, filename: string): unknown };
const compile = P._compile;
P._compile = function (code, filename) {
  if (filename.startsWith(EXAMPLE) && filename.endsWith('.tsx')) code = `var React = require('react');${code}`;
  return compile.call(this, code, filename);
};
