//go:build unix && !linux

package testcluster

import "syscall"

// sysProcAttr puts the child in its own process group (Stop signals the
// group).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
