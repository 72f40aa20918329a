package athena

import "github.com/cairn-cdp/cairn/internal/lake"

// Statements renders every kind of statement the engine sends, for a
// tenant's database, a run and a version: the golden files show them.
func Statements(db, run, to string) (map[string]string, error) {
	p := lake.Partition{Date: "2026-11-26", Hour: "10"}
	tracks, _ := lake.TableNamed("tracks")
	out := map[string]string{}
	q, err := refineSQL(db, p, run, to)
	if err != nil {
		return nil, err
	}
	out["refine"] = q
	for _, t := range lake.TablesIn(lake.ZoneCurated) {
		if out["curate_"+t.Name], err = curateSQL(db, t, run, to); err != nil {
			return nil, err
		}
	}
	out["purge_hits"] = purgeHitsSQL(db, run)
	out["purge_rewrite"] = purgeRewriteSQL(db, tracks, p, run, to)
	out["purge_curated"] = purgeCuratedSQL(db, run, lake.TablesIn(lake.ZoneCurated)[:2])
	out["count"] = countSQL(db, []lake.Table{tracks}, &p, lake.TablesIn(lake.ZoneCurated)[:1])
	out["sample_clean"] = sampleSQL(db, tracks, []string{"2026-11-26T10", "2026-11-26T11"}, 300)
	out["sample_curated"] = sampleSQL(db, lake.TablesIn(lake.ZoneCurated)[0], nil, 300)
	return out, nil
}
