package testcluster

import "syscall"

// sysProcAttr puts the child in its own process group (Stop signals the
// group) and kills it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
