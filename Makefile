# kubetrail: one cgo shared object that Fluent Bit loads, plus a C test host.
#
#   make setup      install what building and testing need (apt-get as root, Go modules)
#   make            build/kubetrail.so (k8s_events input), build/flb-filter_k8s_audit.so (link),
#                   build/plugins.conf, build/flb-testhost, build/kubetrail (the audit command)
#   make demo       run k8s_audit over the bundled sample audit log, print the records
#   make test       library check, vet, race tests of the pure-Go packages, test-host
#                   tests, fuzzing
#   make bench      Go benchmarks and flb-testhost bench
#   make bench-events  k8s_events against a real apiserver: sync time/RSS, requests per hour
#   make bench-fluentbit  with FLUENT_BIT: k8s_audit vs parser json vs Lua, k8s_events vs kubernetes_events
#   make chaos      k8s_events under kill -9 and leader kills: versions lost and repeated
#   make bench-audit   kubetrail audit over a generated ~1 GB log, one core: MB/s, peak RSS
#   make clean

GO       ?= go
CC       ?= cc
BUILD    ?= build
FUZZTIME ?= 15s
CFLAGS   ?= -O2 -g -Wall -Wextra

MSGPACK_CFLAGS := $(shell pkg-config --cflags msgpack 2>/dev/null)
MSGPACK_LIBS   := $(shell pkg-config --libs msgpack 2>/dev/null || echo -lmsgpackc)

LIB          := $(BUILD)/kubetrail.so
FILTER_LINK  := $(BUILD)/flb-filter_k8s_audit.so
PLUGINS_CONF := $(BUILD)/plugins.conf
TESTHOST     := $(BUILD)/flb-testhost
KUBETRAIL    := $(BUILD)/kubetrail

GO_SOURCES := $(shell find . -name '*.go' -not -name '*_test.go' -not -path './build/*') \
              $(wildcard plugin/*.c plugin/*.h) go.mod go.sum
TESTHOST_SOURCES := $(wildcard test/testhost/*.c test/testhost/*.h)

# Packages without cgo: race-tested and fuzzed. plugin/ is the cgo main package;
# test/testhost/ drives the built artefacts.
PURE_PKGS = $(shell $(GO) list ./... | grep -v -e '/plugin$$' -e '/test/testhost$$')

# flb-testhost bench corpora (audit log files, one event per line).
BENCH_METADATA        ?= enrich/testdata/apiserver-metadata.log enrich/testdata/metadata.log
BENCH_REQUESTRESPONSE ?= enrich/testdata/requestresponse.log
BENCH_SECONDS         ?= 5
BENCH_SAMPLE          ?= ../shared/testdata/audit/audit2rbac-demo-v1-relabeled.log

.PHONY: all setup demo test check-lib fuzz bench bench-events bench-fluentbit bench-audit chaos clean

all: $(LIB) $(FILTER_LINK) $(PLUGINS_CONF) $(TESTHOST) $(KUBETRAIL)

# The command-line tool: pure Go, no cgo, one static binary.
$(KUBETRAIL): $(GO_SOURCES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/kubetrail

$(LIB): $(GO_SOURCES)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath -o $@ ./plugin

# Fluent Bit loads flb-*.so files as native plugins and reads the symbol named after
# the file (filter_k8s_audit_plugin). A link, never a copy: a copy would load a second
# Go runtime into the process.
$(FILTER_LINK): $(LIB)
	ln -sfn $(notdir $(LIB)) $@

# Both plugins: kubetrail.so itself is the Go-proxy input (FLBPluginRegister), the link
# the native filter. Fluent Bit dlopens one file twice and gets one handle: one Go runtime.
$(PLUGINS_CONF): Makefile
	@mkdir -p $(BUILD)
	printf '[PLUGINS]\n    Path %s\n    Path %s\n' '$(abspath $(LIB))' '$(abspath $(FILTER_LINK))' > $@

# The real kube-apiserver and etcd that test/testcluster's tests need
# (test/k8s/apiserver.mk: `make apiserver`, ~10 min cold, into build/k8s).
-include test/k8s/apiserver.mk
APISERVER_DEP := $(if $(wildcard test/k8s/apiserver.mk),apiserver)

# Debian packages: the C toolchain and msgpack-c for the test host; Chromium for the
# test that opens the `kubetrail audit -o html` report headless; time (/usr/bin/time)
# for make bench-audit. Needs root.
APT_PACKAGES := build-essential pkg-config libmsgpack-dev ca-certificates git chromium time
setup:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	set -x; $$SUDO apt-get update -q && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(APT_PACKAGES) </dev/null
	$(GO) mod download
	cd test/k8s && $(GO) mod download
	cd test/helm && $(GO) mod download

DEMO_LOG ?= conf/examples/sample-audit.log
demo: all
	$(TESTHOST) filter -l $(FILTER_LINK) $(DEMO_LOG)

$(TESTHOST): $(TESTHOST_SOURCES)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(MSGPACK_CFLAGS) -o $@ \
		test/testhost/flb-testhost.c test/testhost/host.c test/testhost/input.c test/testhost/mpjson.c \
		-rdynamic -ldl -lpthread $(MSGPACK_LIBS) -lm

# What the tests need is built above, so a test that would skip for want of it (on a
# fresh clone, `go test ./...` skips them with a line saying what to run) fails here
# instead (test/repo).
test: export KUBETRAIL_REQUIRE_ARTEFACTS = 1
test: all check-lib $(APISERVER_DEP)
	$(GO) vet ./...
	$(GO) test -race $(PURE_PKGS)
	$(GO) test ./plugin/
	$(GO) test -count=1 ./test/testhost/
	cd test/helm && $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz

# What the library needs from the system that loads it: glibc <= 2.36 (the
# fluent/fluent-bit images), no other shared library. The image's build stage runs it too.
check-lib: $(LIB)
	scripts/check-lib.sh $(LIB)

# Every Fuzz target of the pure-Go packages, FUZZTIME each.
fuzz:
	@set -e; for pkg in $(PURE_PKGS); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== fuzz $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: all
	$(GO) test -run '^$$' -bench . -benchmem ./enrich ./plugin/flbchunk ./plugin/k8saudit
	@set -e; files="$(BENCH_METADATA) $(BENCH_REQUESTRESPONSE)"; \
	if [ -z "$$(echo $$files)" ]; then \
		echo "== no BENCH_METADATA / BENCH_REQUESTRESPONSE corpus given: flb-testhost bench on $(BENCH_SAMPLE)"; \
		files="$(BENCH_SAMPLE)"; \
	fi; \
	for f in $$files; do \
		echo "== flb-testhost bench $$f"; \
		$(TESTHOST) bench -l $(FILTER_LINK) --seconds $(BENCH_SECONDS) $$f; \
	done

# k8s_events under kill -9 and leader kills (test/testhost/chaos_test.go): CHAOS_KILLS random
# SIGKILLs of one instance and CHAOS_LEADER_KILLS of the leader of two, while Events are
# created and updated at CHAOS_RATE versions/s against the real apiserver, through
# flb-testhost (threaded and threaded off) and, when FLUENT_BIT names one, a real Fluent
# Bit with filesystem storage. Prints versions acknowledged, lost, repeated. (make test
# runs a short version: 6 and 2.)
CHAOS_KILLS        ?= 50
CHAOS_LEADER_KILLS ?= 10
CHAOS_RATE         ?= 30
chaos: all $(APISERVER_DEP)
	KUBETRAIL_CHAOS_KILLS=$(CHAOS_KILLS) KUBETRAIL_CHAOS_LEADER_KILLS=$(CHAOS_LEADER_KILLS) \
		KUBETRAIL_CHAOS_RATE=$(CHAOS_RATE) $(GO) test -count=1 -v -timeout 3h -run TestChaos ./test/testhost/

# k8s_events against a real apiserver: the first sync of SYNC_EVENTS existing Events
# (time, peak RSS), then LIST/WATCH requests over STEADY at steady state, next to a real
# Fluent Bit's kubernetes_events when FLUENT_BIT or PATH has one. Figures in the test log.
SYNC_EVENTS ?= 10000,100000
STEADY      ?= 1h
bench-events: all $(APISERVER_DEP)
	KUBETRAIL_SYNC_EVENTS=$(SYNC_EVENTS) KUBETRAIL_STEADY=$(STEADY) \
		$(GO) test -count=1 -v -timeout 3h -run "TestSyncExistingEvents|TestSteadyStateRequests" ./test/testhost/

# Side by side in a real Fluent Bit (FLUENT_BIT must name one): the audit comparison
# (plain tail, Parser json, k8s_audit, Parser json + Lua: CPU per record over tail and
# the ratios) and the first sync of SYNC_EVENTS existing Events by k8s_events and by
# Fluent Bit's kubernetes_events (time, peak RSS). Figures in the test log.
COST_LINES  ?= 300000
COST_ROUNDS ?= 3
bench-fluentbit: all $(APISERVER_DEP)
	@test -n "$$FLUENT_BIT" || { echo "bench-fluentbit: set FLUENT_BIT to a fluent-bit executable"; exit 2; }
	KUBETRAIL_BENCH_FLUENTBIT=1 KUBETRAIL_COST_LINES=$(COST_LINES) KUBETRAIL_COST_ROUNDS=$(COST_ROUNDS) \
		KUBETRAIL_SYNC_EVENTS=$(SYNC_EVENTS) \
		$(GO) test -count=1 -v -timeout 3h -run "TestFluentBitAuditCost|TestSyncExistingEvents" ./test/testhost/

# kubetrail audit over BENCH_AUDIT_SIZE of generated audit log (test/auditgen: an
# hour of a busy cluster's Metadata-level events), plain and gzip, on one core
# (GOMAXPROCS=1, taskset -c 0): elapsed time, MB/s of uncompressed log and peak RSS
# (/usr/bin/time) per output, the median of BENCH_AUDIT_RUNS runs. The log is kept
# in $(BENCH_AUDIT_DIR) for the next run (make clean removes it).
BENCH_AUDIT_SIZE    ?= 1g
BENCH_AUDIT_DIR     ?= $(BUILD)/bench-audit
BENCH_AUDIT_RUNS    ?= 3
BENCH_AUDIT_OUTPUTS ?= top line json stats html
bench-audit: $(KUBETRAIL)
	$(GO) test -run '^$$' -bench Process -benchmem ./cmd/kubetrail
	@set -e; mkdir -p $(BENCH_AUDIT_DIR); log=$(BENCH_AUDIT_DIR)/audit-$(BENCH_AUDIT_SIZE).log; \
	if [ ! -s $$log ]; then $(GO) run ./cmd/kubetrail/internal/genaudit -bytes $(BENCH_AUDIT_SIZE) -o $$log; fi; \
	if [ ! -s $$log.gz ]; then gzip -c $$log > $$log.gz; fi; \
	size=$$(stat -c %s $$log); echo "== $$log: $$size bytes, $$(stat -c %s $$log.gz) gzipped"; \
	for f in $$log $$log.gz; do for o in $(BENCH_AUDIT_OUTPUTS); do \
		for i in $$(seq $(BENCH_AUDIT_RUNS)); do \
			GOMAXPROCS=1 taskset -c 0 /usr/bin/time -f '%e %M' -o $(BENCH_AUDIT_DIR)/time.txt \
				$(KUBETRAIL) audit -f $$f -o $$o > /dev/null || [ $$? = 3 ]; \
			cat $(BENCH_AUDIT_DIR)/time.txt; \
		done | sort -n | awk -v f=$$(basename $$f) -v o=$$o -v size=$$size -v runs=$(BENCH_AUDIT_RUNS) \
			'{ t[NR] = $$1; if ($$2 > rss) rss = $$2 } END { m = t[int((NR + 1) / 2)]; \
			  printf "%-28s -o %-6s median %6.2f s of %d runs  %7.1f MB/s  peak RSS %6.1f MB\n", f, o, m, runs, size / 1e6 / m, rss / 1024 }'; \
	done; done

# Leaves build/k8s (make clean-apiserver removes it: a cold rebuild takes minutes).
clean:
	rm -f $(LIB) $(BUILD)/kubetrail.h $(FILTER_LINK) $(PLUGINS_CONF) $(TESTHOST) $(KUBETRAIL)
	rm -rf $(BENCH_AUDIT_DIR)
