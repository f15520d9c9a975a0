//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death signal: there the demo's and
// benchmarks' nodes are stopped by their normal shutdown only.
func dieWithParent(cmd *exec.Cmd) {}
