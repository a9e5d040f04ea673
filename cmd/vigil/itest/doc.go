// Package itest holds end-to-end tests: real in-process Vigil servers on
// random loopback ports, driven with the official vault/api client.
package itest
