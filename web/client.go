package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// clientTimeout bounds one API call; the API answers from a few metadata reads.
const clientTimeout = 30 * time.Second

// Client calls a node's API (base like "http://127.0.0.1:27182"). Any node answers for the fleet.
type Client struct {
	Base string
}

// Start asks the node to start the sync from cluster0 to cluster1. A refusal is an *Error carrying
// the node's status, code and description.
func (c Client) Start(ctx context.Context) error {
	var reply struct {
		errorBody
	}
	return c.call(ctx, http.MethodPost, "/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`, &reply)
}

// StartWith asks the node to start the sync with req's parameters.
func (c Client) StartWith(ctx context.Context, req StartRequest) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var reply struct{ errorBody }
	return c.call(ctx, http.MethodPost, "/api/v1/start", string(body), &reply)
}

// Commit asks the node to commit the sync (mongosync's body: an empty object).
func (c Client) Commit(ctx context.Context) error {
	var reply struct{ errorBody }
	return c.call(ctx, http.MethodPost, "/api/v1/commit", "{}", &reply)
}

// Progress reads the node's /progress.
func (c Client) Progress(ctx context.Context) (Progress, error) {
	var reply struct {
		errorBody
		Progress Progress `json:"progress"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/progress", "", &reply)
	return reply.Progress, err
}

// call makes one request and decodes its reply into out, whose embedded errorBody tells success.
func (c Client) call(ctx context.Context, method, path, body string, out interface{ ok() (bool, *Error) }) error {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s answered %s: %q", method, path, resp.Status, raw)
	}
	if success, apiErr := out.ok(); !success {
		apiErr.Status = resp.StatusCode
		return apiErr
	}
	return nil
}

func (b *errorBody) ok() (bool, *Error) {
	return b.Success, &Error{Code: b.Error, Description: b.ErrorDescription}
}
