package jsonptr

import "testing"

func TestAppend(t *testing.T) {
	cases := []struct{ ptr, token, want string }{
		{"", "a", "/a"},
		{"/definition", "all", "/definition/all"},
		{"/x", "a/b", "/x/a~1b"},
		{"/x", "m~n", "/x/m~0n"},
		{"/x", "~1", "/x/~01"},
		{"/x", "", "/x/"},
	}
	for _, c := range cases {
		if got := Append(c.ptr, c.token); got != c.want {
			t.Errorf("Append(%q, %q) = %q, want %q", c.ptr, c.token, got, c.want)
		}
	}
}
