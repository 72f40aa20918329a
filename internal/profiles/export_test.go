package profiles

// ConfigCompiles returns how many identity configurations s has compiled
// for ingestion.
func ConfigCompiles(s *Service) int64 { return s.configs.compiles.Load() }
