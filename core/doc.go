// Package core holds Vigil's domain types — Request, Response, Operation,
// Principal, Decision, the coded Error — and the Dispatcher, the single way
// a request reaches a secrets engine.
//
// The package depends on nothing else in Vigil. Subsystems that the
// Dispatcher needs (authentication, authorization, auditing, routing) are
// small interfaces declared here and implemented elsewhere.
package core
