package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubetrail/kubetrail/test/repo"
)

// TestMain runs the tests in deploy/, the folder they check: kubectl kustomize
// renders ".", and the manifests, the Dockerfile ("../Dockerfile") and what make
// builds ("../build") are named as a user in deploy/ would name them. The tests live
// in test/deploy so that deploy/ holds only what is applied.
func TestMain(m *testing.M) {
	root, err := repo.Root()
	if err == nil {
		err = os.Chdir(filepath.Join(root, "deploy"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/deploy:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
