package enrich

// Summary is what a tool that reads many records (kubetrail audit: filters, top lists,
// percentiles, charts) needs of one record without decoding its msgpack Fields: the same
// values the record carries, computed by the same code, so that a derived field means
// the same thing in the filter's records and in the tool's reports.
//
// Byte slices are views into the Worker's memory, valid until its next call: copy what
// you keep. A field is empty when the event does not say.
type Summary struct {
	AuditID, Level, Stage, Verb []byte
	// RequestURI is as written in the record (after redaction of exec commands:
	// redactExecCommand updates the parsed event's requestURI).
	RequestURI  []byte
	RequestPath []byte `derived:"request_path"`
	UserAgent   []byte

	// User is user.username; EffectiveUser the identity authorization used (the
	// impersonated user, else User).
	User             []byte
	EffectiveUser    []byte `derived:"effective_user"`
	ImpersonatedUser []byte `derived:"impersonated_user"`
	UserType         string `derived:"user_type"`

	// GroupResource is resource[.group][/subresource], empty for non-resource requests,
	// whose path is NonResourceURL. Resource to Name come from objectRef, else from the
	// request URI (the record has them as derived fields only then).
	GroupResource                   []byte `derived:"group_resource"`
	Resource, APIGroup, Subresource []byte
	Namespace, Name, NonResourceURL []byte

	// Code is responseStatus.code, 0 when absent.
	Code int
	// DurationMs is duration_ms, valid when HasDuration.
	DurationMs  float64 `derived:"duration_ms"`
	HasDuration bool
	LongRunning bool `derived:"long_running"`
	// Outcome is success, failure or unknown.
	Outcome          string `derived:"outcome"`
	AuthzDecision    []byte `derived:"authz_decision"`
	AuthzReason      []byte `derived:"authz_reason"`
	ClientIP         []byte `derived:"client_ip"`
	PeerIP           []byte `derived:"peer_ip"`
	UserAgentProduct []byte `derived:"user_agent_product"`

	// Received is requestReceivedTimestamp (v1beta1: timestamp), StageTime
	// stageTimestamp; zero when absent or unparsable.
	Received, StageTime Time

	groups mpv
}

// Groups appends user.groups to dst (views, valid like the other fields).
func (s *Summary) Groups(dst [][]byte) [][]byte {
	s.groups.items(func(g mpv) {
		if b := g.str(); b != nil {
			dst = append(dst, b)
		}
	})
	return dst
}

// summary fills a record's Summary from the event and its derived fields.
func (w *Worker) summary(t *top, d *derived) Summary {
	s := Summary{
		AuditID: t.auditID, Level: t.level, Stage: t.stage, Verb: t.verb,
		RequestURI: t.requestURI, RequestPath: d.requestPath, UserAgent: t.userAgent,
		User: d.username, EffectiveUser: d.effectiveUser, ImpersonatedUser: d.impersonatedUser,
		UserType:      d.userType,
		GroupResource: d.groupResource, Resource: d.resource, APIGroup: d.apiGroup,
		Subresource: d.subresource, Namespace: d.namespace, Name: d.name,
		NonResourceURL: d.nonResourceURL,
		Code:           int(d.code),
		DurationMs:     d.durationMs, HasDuration: d.hasDuration, LongRunning: d.longRunning,
		Outcome:       d.outcome,
		AuthzDecision: d.authzDecision, AuthzReason: d.authzReason,
		ClientIP: d.clientIP, PeerIP: d.peerIP, UserAgentProduct: d.uaProduct,
		Received: d.received, StageTime: d.stageTime,
	}
	s.groups = t.user.get("groups")
	return s
}
