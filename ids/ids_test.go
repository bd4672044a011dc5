package ids

import (
	"regexp"
	"testing"
)

var canonical = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[45][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNew(t *testing.T) {
	a, b := New(), New()
	if a == b || !canonical.MatchString(a) || a[14] != '4' {
		t.Fatalf("New() = %s, %s", a, b)
	}
}

func TestFromName(t *testing.T) {
	a := FromName("books", "key-1")
	if a != FromName("books", "key-1") || !canonical.MatchString(a) || a[14] != '5' {
		t.Fatalf("FromName not stable or not canonical: %s", a)
	}
	if a == FromName("books", "key-2") || FromName("ab", "c") == FromName("a", "bc") {
		t.Fatal("different names gave the same id")
	}
}

// The ids are those made before (Idempotency-Keys map to them), and RFC
// 4122's: Python's uuid.uuid5(uuid.NAMESPACE_DNS, name) gives the same.
func TestFromNameGolden(t *testing.T) {
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{[]string{"www.example.com"}, "2ed6657d-e927-568b-95e1-2665a8aea6a2"},
		{[]string{"books", "key-1"}, "0968cc4c-d21e-5bae-9742-58a8c2d4423e"},
		{[]string{"book-id", "k", "alice"}, "2b2c7b15-8735-50d6-a50a-6354f769f905"},
	} {
		if got := FromName(tc.parts...); got != tc.want {
			t.Errorf("FromName(%q) = %s, want %s", tc.parts, got, tc.want)
		}
	}
}
