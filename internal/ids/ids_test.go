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
