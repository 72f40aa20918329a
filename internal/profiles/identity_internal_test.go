package profiles

import (
	"regexp/syntax"
	"strings"
	"testing"
)

// TestPatternSize: the estimate made before expanding an expression stays
// close to the compiled size, so it refuses the huge ones before they are
// built and none that would fit.
func TestPatternSize(t *testing.T) {
	for _, expr := range []string{
		`^test-`, `@example\.test$`, `(?i)^(test|qa|demo)[-_.]?\d*@(example|mailinator)\.(com|net|org)$`,
		`.{1,100}`, `.{1,200}`, `[a-z]{1,50}@x`, `^\+1555\d{7}$`, `x{3,}`, `(ab){2,5}c*`, `(a|b|c)*d+e?`,
		`((a{1,5}){1,5}){1,5}`, `(?:[0-9a-f]{8}-){3}[0-9a-f]{12}`, strings.Repeat(`.{1,10}`, 20),
	} {
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			t.Fatal(err)
		}
		est, got := patternSize(re), len(prog.Inst)
		if est < got/2-4 || est > 2*got+4 {
			t.Errorf("%s: estimate %d, compiled %d", expr, est, got)
		}
	}
	re, _ := syntax.Parse(strings.Repeat(`.{1,1000}`, 45), syntax.Perl)
	if n := patternSize(re); n <= MaxPatternInsts {
		t.Fatalf("the probe is estimated at %d instructions", n)
	}
}
