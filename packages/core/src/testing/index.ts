/**
 * `@fedcxr/core/testing`: helpers for tests, never imported by production code (tests/production-imports.test.ts
 * fails when a production source imports a `/testing` entry or another package's testing module).
 */
export { CHROMIUM, hasChromium, withChromiumPage } from './chromium.js';
