// Package bankservice assembles the bank example: the accounts aggregate
// and the per-customer balance read model registered in one eskafka.App,
// and their HTTP API. It is the composition root; cmd/bank only adds a
// broker and an HTTP server.
//
// The API:
//
//	POST   /accounts                     {"customer":"alice"} opens an account (201, Location)
//	POST   /accounts/{id}/deposits       {"amount":100} deposits 100 cents
//	POST   /accounts/{id}/withdrawals    {"amount":30} withdraws, never below zero
//	                                     (422 with code "insufficient_funds")
//	DELETE /accounts/{id}                closes an empty account
//	GET    /accounts/{id}, GET /accounts, GET /accounts/{id}/history
//	POST   /accounts/commands, GET /accounts/commands/{msgId}
//	GET    /customers/{customer}/balance the sum over the customer's open accounts
//
// and /healthz, /readyz.
package bankservice

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/bookscatalog/catalog/codec/jsoncodec"
	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
	"github.com/bookscatalog/catalog/examples/bank/account"
	"github.com/bookscatalog/catalog/examples/bank/balance"
	"github.com/bookscatalog/catalog/httpapi"
)

// Config configures a bank.
type Config struct {
	// App is the runtime's configuration: brokers and their security
	// options (ClientOpts), service name (the prefix of every topic),
	// partitions, replication factor, instance id or data directory,
	// store opener (nil: in memory, restored from Kafka at each start).
	App eskafka.AppConfig
	// HTTP is the API's configuration (write timeout, allowed hosts,
	// access, peers...); New adds the resources, the balance endpoint and
	// the health check.
	HTTP httpapi.Config
}

// Bank is one instance of the bank service.
type Bank struct {
	app     *eskafka.App
	handler http.Handler
}

// New registers the bank's aggregate and read model in a new App, creates
// and checks their topics (App.Start) and builds the HTTP API. Nothing
// consumes until Run.
func New(ctx context.Context, cfg Config) (*Bank, error) {
	app, err := eskafka.NewApp(cfg.App)
	if err != nil {
		return nil, err
	}
	// The accounts' records are JSON, with the command and event types
	// the domain lists once; the HTTP API shows them in the same shape.
	// (The catalog uses Avro with a schema registry instead: any es.Codec
	// will do.)
	commands, events := jsoncodec.NewUnion(account.Commands()...), jsoncodec.NewUnion(account.Events()...)
	codecs := es.Codecs[account.State, account.Command, account.Event]{
		State: jsoncodec.Value[account.State]{Name: "Account"}, Command: commands, Event: events,
	}
	// The whole registration: one line per aggregate, one per read model.
	accounts := eskafka.Register(app, account.Aggregate(), codecs)
	balances := balance.Register(app, codecs.Event)
	if err := app.Start(ctx); err != nil {
		app.Close()
		return nil, fmt.Errorf("start the bank: %w", err)
	}
	b := &Bank{app: app}

	// The API: the caller's settings, with the bank's routes added to
	// copies of its lists.
	api := cfg.HTTP
	api.Resources = slices.Clone(api.Resources)
	api.Health = app
	api.Partitions = int(cfg.App.Partitions)
	api.Handle(&httpapi.Resource[account.State, account.Command, account.Event]{
		Aggregate: account.Aggregate(), Singular: "account", KeyName: "id",
		ValidKey: validID,
		Writer:   accounts.Gateway, Reader: accounts.Processor,
		Commands: commands, Events: events,
		Writes: accountWrites(),
	})
	// The balance is keyed by customer, not by an aggregate: a View,
	// read on the instance that owns the customer, forwarded there from
	// any other.
	api.Handle(&httpapi.View{
		Path: "/customers/{customer}/balance", Singular: "balance",
		ValidKey: func(customer string) error {
			if rej := account.ValidateID("customer", customer); rej != nil {
				return rej
			}
			return nil
		},
		Read: httpapi.Read{
			Get:       func(_ context.Context, customer string) (any, error) { return balances.Get(customer) },
			Ownership: balances.Ownership(),
		},
	})
	if api.Logger == nil {
		api.Logger = cfg.App.Logger
	}
	b.handler = httpapi.New(api)
	return b, nil
}

// validID checks the form of an account id in a path or a command.
func validID(id string) error {
	if rej := account.ValidateID("id", id); rej != nil {
		return rej
	}
	return nil
}

// accountWrites are the write endpoints of /accounts, one command each.
func accountWrites() []httpapi.Write[account.State, account.Command, account.Event] {
	return []httpapi.Write[account.State, account.Command, account.Event]{
		{Method: http.MethodPost, Status: http.StatusCreated, Command: func(r *httpapi.WriteRequest) (account.Command, *httpapi.Problem) {
			var body struct {
				ID       *string `json:"id"`
				Customer *string `json:"customer"`
			}
			if p := r.Decode(&body); p != nil {
				return nil, p
			}
			if p := httpapi.Required("customer", body.Customer); p != nil {
				return nil, p
			}
			// The id is the body's, or made up (from the
			// Idempotency-Key, if any, so that a retry opens the same
			// account and is recognised).
			id := r.NewID("account-id")
			if body.ID != nil {
				id = *body.ID
			}
			return account.OpenAccount{ID: id, Customer: *body.Customer}, nil
		}},
		{Method: http.MethodPost, Path: "/{key}/deposits", Status: http.StatusOK, Command: func(r *httpapi.WriteRequest) (account.Command, *httpapi.Problem) {
			amount, p := decodeAmount(r)
			return account.Deposit{ID: r.Key, Amount: amount}, p
		}},
		{Method: http.MethodPost, Path: "/{key}/withdrawals", Status: http.StatusOK, Command: func(r *httpapi.WriteRequest) (account.Command, *httpapi.Problem) {
			amount, p := decodeAmount(r)
			return account.Withdraw{ID: r.Key, Amount: amount}, p
		}},
		{Method: http.MethodDelete, Path: "/{key}", Status: http.StatusNoContent, Command: func(r *httpapi.WriteRequest) (account.Command, *httpapi.Problem) {
			return account.CloseAccount{ID: r.Key}, nil
		}},
	}
}

// decodeAmount reads {"amount": cents}; the domain checks its range.
func decodeAmount(r *httpapi.WriteRequest) (int64, *httpapi.Problem) {
	var body struct {
		Amount *int64 `json:"amount"`
	}
	if p := r.Decode(&body); p != nil {
		return 0, p
	}
	if body.Amount == nil {
		p := httpapi.NewProblem(http.StatusUnprocessableEntity, `field "amount" is required (whole cents)`)
		p.Field = "amount"
		return 0, p
	}
	return *body.Amount, nil
}

// Handler returns the HTTP API.
func (b *Bank) Handler() http.Handler { return b.handler }

// Readiness returns nil when every stage has joined its group, restored
// its partitions and makes progress; else why not.
func (b *Bank) Readiness() error { return b.app.Readiness() }

// Run runs the aggregate's processor and the read model's stages until ctx
// ends or one fails. Close the Bank after Run.
func (b *Bank) Run(ctx context.Context) error { return b.app.Run(ctx) }

// Close releases what the bank holds: the producer and the stores.
func (b *Bank) Close() { b.app.Close() }
