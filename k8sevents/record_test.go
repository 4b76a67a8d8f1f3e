package k8sevents

import (
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/conf"
)

func TestRecordTimeOrder(t *testing.T) {
	cases := []struct {
		api  api
		obj  map[string]any
		want string
	}{
		{coreAPI, map[string]any{
			"series":         map[string]any{"lastObservedTime": "2026-11-23T10:00:03.123456Z"},
			"eventTime":      "2026-11-23T10:00:02.000001Z",
			"lastTimestamp":  "2026-11-23T10:00:01Z",
			"firstTimestamp": "2026-11-23T10:00:00Z",
		}, "2026-11-23T10:00:03.123456Z"},
		{coreAPI, map[string]any{"eventTime": nil, "lastTimestamp": "2026-11-23T10:00:01Z", "firstTimestamp": "2026-11-23T10:00:00Z"}, "2026-11-23T10:00:01Z"},
		{coreAPI, map[string]any{"lastTimestamp": "not a time", "firstTimestamp": "2026-11-23T10:00:00Z"}, "2026-11-23T10:00:00Z"},
		{coreAPI, map[string]any{"metadata": map[string]any{"creationTimestamp": "2026-11-23T09:00:00Z"}}, "2026-11-23T09:00:00Z"},
		{eventsAPI, map[string]any{"deprecatedLastTimestamp": "2026-11-23T10:00:01Z", "lastTimestamp": "2026-11-23T11:00:00Z"}, "2026-11-23T10:00:01Z"},
		{coreAPI, map[string]any{}, ""},
	}
	for i, c := range cases {
		got := c.api.recordTime(c.obj)
		if c.want == "" {
			if !got.IsZero() {
				t.Errorf("%d: %v, want zero", i, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339Nano, c.want)
		if !got.Equal(want) {
			t.Errorf("%d: %v, want %v", i, got, want)
		}
	}
}

func TestFactsBothAPIs(t *testing.T) {
	core := map[string]any{
		"reason": "BackOff", "type": "Warning",
		"metadata":       map[string]any{"namespace": "web"},
		"involvedObject": map[string]any{"kind": "Pod", "name": "web-1"},
		"source":         map[string]any{"component": "kubelet"},
	}
	f := coreAPI.facts(core)
	if f[conf.EventRuleKind] != "Pod" || f[conf.EventRuleName] != "web-1" || f[conf.EventRuleSource] != "kubelet" || f[conf.EventRuleNamespace] != "web" {
		t.Errorf("core facts %q", f)
	}
	ev := map[string]any{
		"reason": "Scheduled", "type": "Normal", "reportingController": "default-scheduler",
		"regarding":        map[string]any{"kind": "Pod", "name": "web-2"},
		"deprecatedSource": map[string]any{"component": "old"},
	}
	f = eventsAPI.facts(ev)
	if f[conf.EventRuleKind] != "Pod" || f[conf.EventRuleName] != "web-2" || f[conf.EventRuleSource] != "default-scheduler" {
		t.Errorf("events.k8s.io facts %q", f)
	}
}
