package service_test

// The catalog on a secured broker (kafkatest.SecuredBroker: kfake, or in CI
// Apache Kafka with a SASL_SSL listener and the StandardAuthorizer) as a
// principal with exactly the ACLs docs/running.md lists: the service,
// `catalog loadgen` and `catalog schemas` work, and a principal without
// those ACLs can neither read nor write the topics nor join the groups.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bookscatalog/catalog/internal/config"
	"github.com/bookscatalog/catalog/internal/loadgen"
	"github.com/bookscatalog/catalog/internal/schemacli"
	"github.com/bookscatalog/catalog/internal/service"
	"github.com/bookscatalog/catalog/kafkasec"
	"github.com/bookscatalog/catalog/kafkatest"
)

// documentedACLs returns the ACLs the "Secured Kafka" section of
// docs/running.md grants, read from its kafka-acls.sh commands with
// $SERVICE_NAME and $PRINCIPAL replaced.
func documentedACLs(t *testing.T, serviceName, principal string) []*kadm.ACLBuilder {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "running.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Secured Kafka\n")
	if !ok {
		t.Fatal(`docs/running.md has no "## Secured Kafka" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var cmds []string
	inBlock := false
	for line := range strings.SplitSeq(strings.ReplaceAll(section, "\\\n", " "), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock
		case inBlock && strings.HasPrefix(line, "kafka-acls.sh "):
			cmds = append(cmds, line)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("the Secured Kafka section of docs/running.md has no kafka-acls.sh command")
	}
	expand := strings.NewReplacer(`"`, "", "$SERVICE_NAME", serviceName, "$PRINCIPAL", principal)
	var acls []*kadm.ACLBuilder
	for _, cmd := range cmds {
		args := strings.Fields(expand.Replace(cmd))[1:]
		b := kadm.NewACLs()
		var ops []kadm.ACLOperation
		for i := 0; i < len(args); i++ {
			arg := func() string {
				i++
				if i == len(args) {
					t.Fatalf("%s: %s needs a value", cmd, args[i-1])
				}
				return args[i]
			}
			switch args[i] {
			case "--bootstrap-server", "--command-config":
				arg()
			case "--add":
			case "--allow-principal":
				b.Allow(arg())
			case "--resource-pattern-type":
				p, err := kmsg.ParseACLResourcePatternType(arg())
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				b.ResourcePatternType(p)
			case "--topic":
				b.Topics(arg())
			case "--group":
				b.Groups(arg())
			case "--transactional-id":
				b.TransactionalIDs(arg())
			case "--cluster":
				b.Clusters()
			case "--operation":
				op, err := kmsg.ParseACLOperation(arg())
				if err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				ops = append(ops, op)
			default:
				t.Fatalf("%s: this test does not know %s", cmd, args[i])
			}
		}
		acls = append(acls, b.Operations(ops...))
	}
	return acls
}

// grant creates acls as the admin of s, and deletes them when t ends (a
// real broker outlives the test).
func grant(t *testing.T, s *kafkatest.Secured, acls []*kadm.ACLBuilder) {
	t.Helper()
	adm := kadm.NewClient(s.Client(t, s.Admin))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, b := range acls {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create ACL %+v: %v", r, r.Err)
			}
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := adm.DeleteACLs(ctx, b.AllowHosts()); err != nil {
				t.Logf("delete ACLs: %v", err)
			}
		})
	}
}

// secEnv returns the variables that make a client connect as sec (the
// password through a file, as an operator would mount it).
func secEnv(t *testing.T, sec kafkasec.Config, vars map[string]string) func(string) string {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(pw, []byte(sec.SASL.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{
		"KAFKA_TLS_CA_FILE": sec.TLS.CAFile, "KAFKA_TLS_CERT_FILE": sec.TLS.CertFile, "KAFKA_TLS_KEY_FILE": sec.TLS.KeyFile,
		"KAFKA_TLS_SERVER_NAME": sec.TLS.ServerName,
		"KAFKA_SASL_MECHANISM":  sec.SASL.Mechanism, "KAFKA_SASL_USERNAME": sec.SASL.Username, "KAFKA_SASL_PASSWORD_FILE": pw,
	}
	for k, v := range vars {
		all[k] = v
	}
	return func(k string) string { return all[k] }
}

func TestServiceWithTheDocumentedACLs(t *testing.T) {
	s := kafkatest.SecuredBroker(t)
	svcUser := s.NewUser(t, "catalog", kafkasec.ScramSHA512)
	name := kafkatest.Service(t)
	grant(t, s, documentedACLs(t, name, "User:"+svcUser.SASL.Username))

	// The service, configured by its variables.
	dataDir := t.TempDir()
	cfg, err := config.Load(nil, secEnv(t, svcUser, map[string]string{
		"KAFKA_BROKERS": strings.Join(s.Brokers, ","), "SERVICE_NAME": name, "DATA_DIR": dataDir,
		"PARTITIONS": "2", "HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": cmp.Or(os.Getenv("TEST_LOG_LEVEL"), "error"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Protocol() != "SASL_SSL" || cfg.Kafka.SASL.Password != svcUser.SASL.Password {
		t.Fatalf("configuration %v", cfg.Kafka.LogValue())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg.AdvertisedURL = base
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg, service.Options{Listener: ln,
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}})
	if err != nil {
		cancel()
		t.Fatalf("the service does not start with the documented ACLs: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("service: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the service to be ready", func() bool { return svc.Ready() })

	// The web page's live feed: its own Kafka consumer.
	events := subscribe(t, base)

	// The walk-through: a write goes through the command topic, a
	// transaction of the processor, the results topic; the read model
	// and its reaction through their own groups and transactions.
	call(t, "POST", base+"/authors", `{"code":"jane-austen","firstName":"Jane","lastName":"Austen"}`, 201, nil)
	var bk struct {
		ID string `json:"id"`
	}
	call(t, "POST", base+"/books", `{"title":"Persuasion","authorCode":"jane-austen"}`, 201, &bk)
	waitFor(t, "the book in the author's list", func() bool {
		var v struct {
			Books []struct{ ID string } `json:"books"`
		}
		return tryCall(base+"/authors/jane-austen/books", &v) && len(v.Books) == 1 && v.Books[0].ID == bk.ID
	})
	call(t, "DELETE", base+"/authors/jane-austen", "", 204, nil)
	waitFor(t, "the deleted author's book unassigned", func() bool {
		var v struct {
			AuthorCode *string `json:"authorCode"`
		}
		return tryCall(base+"/books/"+bk.ID, &v) && v.AuthorCode == nil
	})
	waitFor(t, "AuthorCreated on the live feed", func() bool {
		select {
		case e := <-events:
			return strings.Contains(e, "AuthorCreated")
		default:
			return false
		}
	})

	// catalog loadgen -mode kafka, as the service's principal.
	rep, err := loadgen.Run(context.Background(), loadgen.Options{Mode: loadgen.ModeKafka, Brokers: s.Brokers, Service: name,
		Kafka: svcUser, Clients: 4, Count: 40, ProgressEvery: -1}, nil)
	if err != nil || rep.Successes != 40 {
		t.Errorf("loadgen: %+v, %v", rep, err)
	}

	// catalog schemas list, configured by the same variables.
	var out, errOut bytes.Buffer
	sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer scancel()
	if err := schemacli.Run(sctx, []string{"list"}, secEnv(t, svcUser, map[string]string{"KAFKA_BROKERS": strings.Join(s.Brokers, ","), "SERVICE_NAME": name}),
		&out, &errOut); err != nil || !strings.Contains(out.String(), "catalog.author.AuthorCreated") {
		t.Errorf("catalog schemas list: %v\n%s%s", err, out.String(), errOut.String())
	}
	stop()

	// A principal without the ACLs, though it authenticates.
	intruder := s.NewUser(t, "intruder", kafkasec.ScramSHA256)
	if err := s.Connect(t, intruder); err != nil {
		t.Fatalf("the intruder does not even authenticate: %v", err)
	}
	events1 := name + ".authors.events"
	t.Run("cannot read the topics", func(t *testing.T) {
		cl := s.Client(t, intruder, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{events1: {0: kgo.NewOffset().AtStart()}}))
		if err := firstFetchError(t, cl); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("consuming %s: %v, want TOPIC_AUTHORIZATION_FAILED", events1, err)
		}
	})
	t.Run("cannot join the groups", func(t *testing.T) {
		group := name + ".authors.processor"
		cl := s.Client(t, intruder)
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = group, "", "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		proto := kmsg.NewJoinGroupRequestProtocol()
		proto.Name = "cooperative-sticky"
		req.Protocols = append(req.Protocols, proto)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Errorf("joining %s: %v, want GROUP_AUTHORIZATION_FAILED", group, err)
		}
		// As a franz-go group consumer would.
		gcl := s.Client(t, intruder, kgo.ConsumerGroup(group), kgo.ConsumeTopics(name+".authors.commands"))
		if err := firstFetchError(t, gcl); !errors.Is(err, kerr.GroupAuthorizationFailed) && !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("a group consumer of %s: %v, want an authorization failure", group, err)
		}
	})
	t.Run("cannot write commands", func(t *testing.T) {
		cl := s.Client(t, intruder)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: name + ".authors.commands", Key: []byte("x"), Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("producing a command: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	})
	t.Run("cannot take the stages' transactional ids", func(t *testing.T) {
		cl := s.Client(t, intruder, kgo.TransactionalID(name+".authors.processor.intruder"))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := cl.BeginTransaction()
		if err == nil {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: name + ".authors.events", Value: []byte("x")}).FirstErr()
		}
		if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			t.Errorf("a transaction: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
		}
	})
}

// firstFetchError polls cl until a fetch fails, and returns that error.
func firstFetchError(t *testing.T, cl *kgo.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			return e.Err
		}
		if len(fs.Records()) > 0 {
			return fmt.Errorf("read %d records", len(fs.Records()))
		}
	}
}

// waitFor polls cond until it holds, failing t after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a request and checks its status, decoding the answer into v.
func call(t *testing.T, method, url, body string, want int, v any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
}

// tryCall GETs url and decodes a 200 answer into v.
func tryCall(url string, v any) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(v) == nil
}

// subscribe opens the live event stream once it is live and returns the
// data of its "event" messages.
func subscribe(t *testing.T, base string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /events/stream: %s", resp.Status)
	}
	events, live := make(chan string, 100), make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var name string
		isLive := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && name == "status" && strings.Contains(line, `"live":true`) && !isLive:
				isLive = true
				close(live)
			case strings.HasPrefix(line, "data: ") && name == "event":
				select {
				case events <- line:
				default:
				}
			}
		}
	}()
	select {
	case <-live:
	case <-time.After(time.Minute):
		t.Fatal("the live event feed did not connect to Kafka")
	}
	return events
}
