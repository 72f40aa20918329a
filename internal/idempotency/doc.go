// Package idempotency makes POST requests that create something safe to
// retry: the same Idempotency-Key with the same request replays the first
// response, with a different request is refused, and while the first is in
// flight is a conflict. Records live in the control-plane database.
package idempotency
