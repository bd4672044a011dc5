package eskafka

import "testing"

// An assignment makes its partitions restoring at once: between the group's
// answer and franz-go's OnPartitionsAssigned the stage must not look ready
// with nothing owned (TestRestore saw "restored 0 records" from that gap).
func TestAssignedPartitionsAreRestoringAtOnce(t *testing.T) {
	s := NewStage(StageSpec{Name: "s", Inputs: []string{"in"}}, Config{})
	s.setOwners(map[int32]string{0: "http://me", 1: "http://me"}, map[string][]int32{"in": {0, 1}})
	if s.Ready() {
		t.Fatal("ready before its assigned partitions are restored")
	}
	if got := s.Partitions(); got[0] != Restoring || got[1] != Restoring {
		t.Fatalf("partitions %v, want both restoring", got)
	}
	s.markReady([]int32{0, 1})
	if !s.Ready() {
		t.Fatal("not ready once restored")
	}
	// A member with nothing assigned (more instances than partitions)
	// is ready as soon as it has joined.
	idle := NewStage(StageSpec{Name: "s", Inputs: []string{"in"}}, Config{})
	idle.setOwners(map[int32]string{0: "http://other"}, map[string][]int32{})
	if !idle.Ready() {
		t.Fatal("a member with no partitions is not ready")
	}
}
