/**
 * What a helper needs of the test that uses it: a place to register its teardown. node:test's
 * TestContext has it; so does anything else that collects `after` callbacks.
 */
export interface HasAfter {
  after(fn: () => unknown): void;
}
