// Package conf turns Fluent Bit properties into validated kubetrail settings: one pure
// parse function per plugin over a Getter, so that everything here is tested without
// Fluent Bit. Property names are snake_case, as Fluent Bit users expect; every error
// names the property at fault.
package conf

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
