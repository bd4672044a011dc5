package eskafka

import "testing"

// An assignment makes its partitions restoring at once: between the group's
// answer and franz-go's OnPartitionsAssigned the stage must not look ready
// with nothing owned (TestRestore saw "restored 0 records" from that gap).
func TestAssignedPartitionsAreRestoringAtOnce(t *testing.T) {
	s := NewStage(StageSpec{Name: "s", Inputs: []string{"in"}}, Config{Lanes: 1})
	s.lanes[0].setOwners(map[int32]string{0: "http://me", 1: "http://me"}, map[string][]int32{"in": {0, 1}})
	if s.Ready() {
		t.Fatal("ready before its assigned partitions are restored")
	}
	if got := s.Partitions(); got[0] != Restoring || got[1] != Restoring {
		t.Fatalf("partitions %v, want both restoring", got)
	}
	s.lanes[0].markReady([]int32{0, 1})
	if !s.Ready() {
		t.Fatal("not ready once restored")
	}
	// A member with nothing assigned (more instances than partitions)
	// is ready as soon as it has joined.
	idle := NewStage(StageSpec{Name: "s", Inputs: []string{"in"}}, Config{})
	idle.lanes[0].setOwners(map[int32]string{0: "http://other"}, map[string][]int32{})
	if !idle.Ready() {
		t.Fatal("a member with no partitions is not ready")
	}
}

// A stage of several lanes serves what each lane was assigned, and is ready
// only once every lane has joined: until then a partition owned by no lane
// may still come to one, so it answers "restoring", not "owned elsewhere".
func TestLanesShareOneView(t *testing.T) {
	s := NewStage(StageSpec{Name: "s", Inputs: []string{"in"}}, Config{Lanes: 2, InstanceID: "i1"})
	if got := []string{s.lanes[0].transactionalID(), s.lanes[1].transactionalID()}; got[0] == got[1] {
		t.Fatalf("lanes share the transactional id %q", got[0])
	}
	owners := map[int32]string{0: "http://me", 1: "http://me", 2: "http://other"}
	s.lanes[0].setOwners(owners, map[string][]int32{"in": {0}})
	s.lanes[0].markReady([]int32{0})
	if s.Ready() {
		t.Fatal("ready while a lane has not joined")
	}
	if err := s.servable(1); err != ErrRestoring {
		t.Fatalf("partition 1 before the second lane joined: %v, want ErrRestoring", err)
	}
	s.lanes[1].setOwners(owners, map[string][]int32{"in": {1}})
	if s.Ready() {
		t.Fatal("ready while the second lane restores")
	}
	s.lanes[1].markReady([]int32{1})
	if !s.Ready() {
		t.Fatal("not ready once both lanes restored")
	}
	if got := s.Partitions(); len(got) != 2 || got[0] != Ready || got[1] != Ready {
		t.Fatalf("partitions %v, want 0 and 1 ready", got)
	}
	for p, want := range map[int32]error{0: nil, 1: nil, 2: ErrNotOwner} {
		if err := s.servable(p); err != want {
			t.Errorf("servable(%d) = %v, want %v", p, err, want)
		}
	}
	// One lane losing a partition leaves the other's alone.
	s.lanes[0].setOwners(owners, map[string][]int32{"in": {}})
	if got := s.Partitions(); len(got) != 1 || got[1] != Ready {
		t.Fatalf("partitions %v after lane 0 lost 0, want only 1", got)
	}
}
