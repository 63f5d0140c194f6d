package console

// routes registers every page. Each page lives in its own file (overview.go, live.go,
// profiles.go, segments.go, destinations.go, sources.go, privacy.go) with its template in
// templates/<page>.html.
func (s *Server) routes() {
	s.registerOverview()
	s.registerLive()
	s.registerProfiles()
	s.registerSegments()
	s.registerDestinations()
	s.registerSources()
	s.registerPrivacy()
}

// navItem is one entry of the navigation.
type navItem struct{ Key, Label, Path string }

// navItems is the navigation, in order.
func navItems() []navItem {
	return []navItem{
		{"overview", "Overview", Prefix + "/"},
		{"live", "Live events", Prefix + "/live"},
		{"profiles", "Profiles", Prefix + "/profiles"},
		{"audiences", "Audiences", Prefix + "/audiences"},
		{"traits", "Computed traits", Prefix + "/traits"},
		{"destinations", "Destinations", Prefix + "/destinations"},
		{"sources", "Sources", Prefix + "/sources"},
		{"privacy", "Privacy", Prefix + "/privacy"},
	}
}
