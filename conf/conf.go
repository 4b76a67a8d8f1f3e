// Package conf turns Fluent Bit properties into validated kubetrail settings: one pure
// parse function per plugin over a Getter, so that everything here is tested without
// Fluent Bit. Property names are snake_case, as Fluent Bit users expect; every error
// names the property at fault.
package conf

import (
	"fmt"
	"strconv"
	"strings"
)

// Getter reads one property of a plugin instance, as Fluent Bit stores it. Unset and
// empty both read as "". Lookups are case-insensitive in Fluent Bit; callers pass the
// lower-case name.
type Getter interface {
	Get(key string) string
}

// MapGetter is a Getter over a map with lower-case keys (tests, the test host, tools).
type MapGetter map[string]string

// Get returns the value stored under key, or "".
func (m MapGetter) Get(key string) string { return m[key] }

// propValue returns the trimmed value of the property name of props, or its default
// when it is unset (""). Asking for a property that is not in props is a bug.
func propValue(g Getter, props []Property, name string) string {
	if v := g.Get(name); v != "" {
		return strings.TrimSpace(v)
	}
	for _, p := range props {
		if p.Name == name {
			return p.Default
		}
	}
	panic("conf: no property " + name)
}

// propError names the plugin and property at fault and wraps err.
func propError(plugin, name string, err error) error {
	return fmt.Errorf("%s: property %q: %w", plugin, name, err)
}

// quote quotes v when a log reader could not tell where it ends.
func quote(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\r\n\"") {
		return strconv.Quote(v)
	}
	return v
}
