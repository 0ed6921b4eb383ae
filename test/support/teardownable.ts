/** What a support helper needs of a tap test: a place to register its clean-up (it runs also on failure). */
export interface Teardownable {
  teardown (fn: () => unknown): void
}
