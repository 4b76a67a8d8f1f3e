# Builds a real kube-apiserver and etcd from Go modules for the integration
# tests (test/testcluster). Paths are relative to the repository root:
#
#   include test/k8s/apiserver.mk        # from the main Makefile
#   make -f test/k8s/apiserver.mk apiserver   # standalone, from the repo root
#
# The versions come from test/k8s/go.mod (k8s.io/kubernetes and
# go.etcd.io/etcd/server/v3, `tool` directives, as is cmd/kubectl); the binaries are only
# rebuilt when that go.mod/go.sum or this file change.
#
# Cost, measured on 2 cores: cold build (no k8s packages in the Go build cache)
# of both binaries 15m18s wall while a nice-19 Fluent Bit build and other go
# builds ran alongside (623 s user + 238 s sys; ~8 min on idle cores per
# /work/shared/KUBE-APISERVER.md), peak RSS
# 1.8 GB (the kube-apiserver link); a warm rebuild (go.mod touched) 3.8 s.
# Module download (first time only): ~80 MB of zips, ~1 min.
# Binaries (stripped): kube-apiserver 98 MiB, etcd 25 MiB.

K8S_MK      := $(lastword $(MAKEFILE_LIST))
K8S_GO      ?= $(if $(GO),$(GO),go)
K8S_MOD_DIR ?= test/k8s
# test/testcluster looks here (or in $$KUBETRAIL_K8S_BIN).
K8S_BIN_DIR ?= build/k8s

K8S_APISERVER := $(K8S_BIN_DIR)/kube-apiserver
K8S_ETCD      := $(K8S_BIN_DIR)/etcd
# kubectl of the same release, for the deploy/ tests (kustomize, server-side dry run):
# Debian ships none. ~2 min on top of a warm apiserver build.
K8S_KUBECTL   := $(K8S_BIN_DIR)/kubectl

# Recursive (=) so that `go list` only runs when a recipe needs it.
K8S_VERSION = $(shell $(K8S_GO) list -C $(K8S_MOD_DIR) -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_VPARTS  = $(subst ., ,$(patsubst v%,%,$(K8S_VERSION)))
# Without these the server reports v0.0.0-master. buildDate is fixed (the
# release date of v1.34.4) so that the binaries are reproducible.
K8S_LDFLAGS = -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(K8S_VERSION) \
	-X $(p).gitMajor=$(word 1,$(K8S_VPARTS)) \
	-X $(p).gitMinor=$(word 2,$(K8S_VPARTS)) \
	-X $(p).gitTreeState=clean \
	-X $(p).buildDate=2026-02-10T12:53:36Z)

K8S_DEPS := $(K8S_MOD_DIR)/go.mod $(K8S_MOD_DIR)/go.sum $(K8S_MK)

.PHONY: apiserver clean-apiserver
apiserver: $(K8S_APISERVER) $(K8S_ETCD) $(K8S_KUBECTL)

$(K8S_APISERVER): $(K8S_DEPS)
	@mkdir -p $(@D)
	$(K8S_GO) build -C $(K8S_MOD_DIR) -trimpath -ldflags '$(K8S_LDFLAGS)' \
		-o $(abspath $@) k8s.io/kubernetes/cmd/kube-apiserver

# etcd's module root package is its main (it calls etcdmain).
$(K8S_ETCD): $(K8S_DEPS)
	@mkdir -p $(@D)
	$(K8S_GO) build -C $(K8S_MOD_DIR) -trimpath -ldflags '-s -w' \
		-o $(abspath $@) go.etcd.io/etcd/server/v3

$(K8S_KUBECTL): $(K8S_DEPS)
	@mkdir -p $(@D)
	$(K8S_GO) build -C $(K8S_MOD_DIR) -trimpath -ldflags '$(K8S_LDFLAGS)' \
		-o $(abspath $@) k8s.io/kubernetes/cmd/kubectl

clean-apiserver:
	rm -f $(K8S_APISERVER) $(K8S_ETCD) $(K8S_KUBECTL)
