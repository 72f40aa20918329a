//go:build !linux

package main

import "os/exec"

// dieWithTest has no portable equivalent outside Linux: TestMain's cleanup
// stops the server.
func dieWithTest(*exec.Cmd) {}
