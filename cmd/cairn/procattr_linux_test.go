package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest has the kernel kill the test's server when the test binary
// dies without running TestMain's cleanup (a panic, go test's -timeout).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
