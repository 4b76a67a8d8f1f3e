package fluentbit

import (
	"slices"
	"sort"
	"strings"

	"github.com/kubetrail/kubetrail/conf"
)

// InstanceProperties are the properties Fluent Bit itself takes from every input,
// filter or processor instance, whatever the plugin: the only ones a kubetrail stanza
// may give besides the plugin's own (conf.EventsProperties, conf.AuditProperties).
// Fluent Bit cannot check a kubetrail plugin's property names (the native filter has
// no config map, the Go proxy input reads only the keys it asks for), so the tests of
// the configurations kubetrail ships check them against these lists.
var InstanceProperties = map[string][]string{
	"input":     {"name", "tag", "alias", "log_level", "storage.type", "storage.pause_on_chunks_overlimit", "mem_buf_limit", "threaded"},
	"filter":    {"name", "match", "match_regex", "alias", "log_level"},
	"processor": {"name", "alias", "log_level"},
}

// PluginProperties sorts the properties of a kubetrail stanza of kind (input, filter,
// processor), keys in any case: own gets the plugin's properties (keys lower-cased,
// values as given), instance ones are left out, and unknown lists, sorted, the keys
// that are neither.
func PluginProperties(kind string, props map[string]string, plugin []conf.Property) (own map[string]string, unknown []string) {
	own = map[string]string{}
	for k, v := range props {
		lk := strings.ToLower(k)
		switch {
		case slices.Contains(InstanceProperties[kind], lk):
		case slices.ContainsFunc(plugin, func(p conf.Property) bool { return p.Name == lk }):
			own[lk] = v
		default:
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return own, unknown
}
