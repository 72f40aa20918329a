package athena

import "github.com/cairn-cdp/cairn/internal/lake"

// Statements renders every kind of statement the engine sends, for a
// tenant's database, a run and a version: the golden files show them.
// With shared set, the clean and curated tables are the pool's, in the
// shared database, and the tenant's rows those of tenant.
func Statements(db, shared, tenant, run, to string) (map[string]string, error) {
	p := lake.Partition{Date: "2026-11-26", Hour: "10"}
	sc := scope{db: db, tables: db}
	if shared != "" {
		sc.tables, sc.tenant = shared, tenant
	}
	tracks, _ := lake.TableNamed("tracks")
	out := map[string]string{}
	q, err := refineSQL(db, p, run, to)
	if err != nil {
		return nil, err
	}
	out["refine"] = q
	for _, t := range lake.TablesIn(lake.ZoneCurated) {
		if out["curate_"+t.Name], err = curateSQL(sc, t, run, to); err != nil {
			return nil, err
		}
	}
	out["purge_hits"] = purgeHitsSQL(sc, run)
	out["purge_rewrite"] = purgeRewriteSQL(sc, tracks, p, run, to)
	out["purge_curated"] = purgeCuratedSQL(sc, run, lake.TablesIn(lake.ZoneCurated)[:2])
	out["count"] = countSQL(sc, []lake.Table{tracks}, &p, lake.TablesIn(lake.ZoneCurated)[:1])
	out["sample_clean"] = sampleSQL(sc, tracks, []string{"2026-11-26T10", "2026-11-26T11"}, 300)
	out["sample_curated"] = sampleSQL(sc, lake.TablesIn(lake.ZoneCurated)[0], nil, 300)
	return out, nil
}

// SharedParameter is the table parameter marking a shared table.
const SharedParameter = sharedParameter
