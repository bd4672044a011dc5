package jsoncodec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type shape interface{ area() int }

type square struct {
	Side int `json:"side"`
}
type rect struct {
	W int `json:"w"`
	H int `json:"h"`
}
type empty struct{}

func (s square) area() int { return s.Side * s.Side }
func (r rect) area() int   { return r.W * r.H }
func (empty) area() int    { return 0 }

func TestUnionRoundTrip(t *testing.T) {
	u := NewUnion[shape](square{}, rect{}, empty{})
	for _, v := range []shape{square{3}, rect{2, 5}, empty{}} {
		b, name, err := u.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if name != reflect.TypeOf(v).Name() || !strings.HasPrefix(string(b), `{"type":"`+name+`"`) {
			t.Fatalf("Encode(%#v) = %s, %q", v, b, name)
		}
		got, err := u.Decode(b)
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("Decode(%s) = %#v, %v; want %#v", b, got, err, v)
		}
	}
}

func TestUnionErrors(t *testing.T) {
	u := NewUnion[shape](square{})
	if _, _, err := u.Encode(rect{}); err == nil {
		t.Error("encoding an unregistered type succeeded")
	}
	for _, in := range []string{`not json`, `{"side":1}`, `{"type":"circle"}`, `{"type":"square","side":"x"}`} {
		if _, err := u.Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%s) succeeded", in)
		}
	}
	// A newer writer's extra member is ignored.
	if v, err := u.Decode([]byte(`{"type":"square","side":2,"color":"red"}`)); err != nil || v != (square{2}) {
		t.Errorf("Decode with an extra member = %#v, %v", v, err)
	}
}

func TestUnionNamesSorted(t *testing.T) {
	u := NewUnion[shape](square{}, rect{}, empty{})
	// Map order differs between runs; ask often enough to see it.
	for range 20 {
		if got := u.Names(); !slices.Equal(got, []string{"empty", "rect", "square"}) {
			t.Fatalf("Names() = %q, want them sorted", got)
		}
	}
}

func TestValue(t *testing.T) {
	c := Value[rect]{Name: "Rect"}
	b, name, err := c.Encode(rect{1, 2})
	if err != nil || name != "Rect" {
		t.Fatal(err, name)
	}
	if v, err := c.Decode(b); err != nil || v != (rect{1, 2}) {
		t.Fatalf("Decode = %#v, %v", v, err)
	}
	if _, err := c.Decode([]byte("[")); err == nil {
		t.Error("Decode of bad JSON succeeded")
	}
}

type opened struct {
	ID string `json:"id"`
}
type closed struct {
	ID string `json:"id"`
}

func (*opened) area() int { return 1 }
func (*closed) area() int { return 2 }

// Pointer members are tagged by their element's name. Before, a pointer
// type had no name, every pointer member was tagged "", and the last one
// won: an *opened decoded as a *closed, silently.
func TestUnionOfPointersRoundTrips(t *testing.T) {
	u := NewUnion[shape](&opened{}, &closed{})
	b, name, err := u.Encode(&opened{ID: "x"})
	if err != nil || name != "opened" {
		t.Fatalf("Encode(&opened{}) = %s, %q, %v; want the tag opened", b, name, err)
	}
	got, err := u.Decode(b)
	if o, ok := got.(*opened); !ok || o.ID != "x" || err != nil {
		t.Fatalf("Decode(Encode(&opened{})) = %#v, %v", got, err)
	}
}

// Two members with one name (the same type name in two packages, or a
// value and a pointer of one type) are refused: either would decode as
// the other.
func TestUnionRefusesTwoMembersOfOneName(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), `"square"`) {
			t.Fatalf("NewUnion(square{}, &square{}) did not panic naming the tag: %v", v)
		}
	}()
	NewUnion[shape](square{}, &square{})
}
