// Command checkpoint is the pre-stop hook of the FROM scratch image in
// Dockerfile.example. spotinit runs it directly from --pre-stop-dir (there is
// no shell in that image) once, on an interruption notice or on the first
// SIGTERM, with the SPOTINIT_* variables set.
//
// It writes what it was told as one line of JSON to
// $CHECKPOINT_DIR/checkpoint.json (atomically: a temporary file renamed over
// it) and says so on stdout, which spotinit copies to its log, a "hook
// output" record a line. Without CHECKPOINT_DIR it only prints. A real hook
// would save the app's state somewhere that outlives the instance (S3, a
// queue); this one needs no network and no credentials.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// checkpoint is the file's content: the hook's environment, and when it ran.
type checkpoint struct {
	Event      string `json:"event"`
	Action     string `json:"action"`
	NoticeTime string `json:"notice_time,omitempty"`
	Deadline   string `json:"deadline"`
	ChildPID   int    `json:"child_pid"`
	Written    string `json:"written"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "checkpoint: error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	now := time.Now().UTC()
	c := checkpoint{
		Event:      os.Getenv("SPOTINIT_EVENT"),
		Action:     os.Getenv("SPOTINIT_ACTION"),
		NoticeTime: os.Getenv("SPOTINIT_NOTICE_TIME"),
		Deadline:   os.Getenv("SPOTINIT_DEADLINE"),
		Written:    now.Format(time.RFC3339),
	}
	// spotinit always sets it; 0 says it did not.
	c.ChildPID, _ = strconv.Atoi(os.Getenv("SPOTINIT_CHILD_PID"))
	left := "unknown"
	if d, err := time.Parse(time.RFC3339, c.Deadline); err == nil {
		left = d.Sub(now).Truncate(time.Second).String()
	}
	fmt.Printf("checkpoint: event=%s action=%s deadline=%s child_pid=%d (%s left)\n",
		c.Event, c.Action, c.Deadline, c.ChildPID, left)
	dir := os.Getenv("CHECKPOINT_DIR")
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".checkpoint-*.json")
	if err != nil {
		return fmt.Errorf("create checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	path := filepath.Join(dir, "checkpoint.json")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace checkpoint: %w", err)
	}
	fmt.Printf("checkpoint: written to %s\n", path)
	return nil
}
