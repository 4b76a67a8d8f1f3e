// Command kubetrail is the offline companion of the kubetrail Fluent Bit plugins:
// `kubetrail audit` reads kube-apiserver audit log files and answers "who is hitting
// the API server, what fails, what is slow" with the same enrich package as the
// k8s_audit filter, so that every derived field means the same in both.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit statuses, documented in `kubetrail audit --help`.
const (
	exitOK         = 0 // everything read, output written
	exitError      = 1 // a file could not be opened or read to its end, or output failed
	exitUsage      = 2 // bad flags or arguments
	exitUnreadable = 3 // every file read to its end, but some lines were not audit events
)

const usage = `kubetrail: offline tools of the kubetrail project

Usage:
  kubetrail audit -f FILE|DIR ... [filters] [-o line|wide|json|top|stats|html]

Commands:
  audit   read kube-apiserver audit logs: filter, list, top, stats, HTML report
          (kubetrail audit --help)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "audit":
		return runAudit(args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "kubetrail: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
