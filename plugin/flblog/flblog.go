// Package flblog is the one logger interface of the plugin cores (plugin/k8saudit,
// plugin/k8sevents): what they say goes through Fluent Bit's own logger, at Fluent
// Bit's levels and with the instance's name in front, as Fluent Bit's C plugins do.
// plugin/ implements it over the host's calls (flb_log_print for the native filter,
// the Go proxy's log_print for the input); tests implement it over testing.T.
package flblog

// Logger receives a plugin instance's messages, one per call, at the level of the
// method (Fluent Bit's error, warn, info and debug).
type Logger interface {
	Errorf(format string, args ...any)
	Warnf(format string, args ...any)
	Infof(format string, args ...any)
	Debugf(format string, args ...any)
}
