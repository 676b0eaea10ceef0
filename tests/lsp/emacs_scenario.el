;;; emacs_scenario.el --- the user scenario in Emacs + eglot, driven by tests/lsp/test_emacs.py -*- lexical-binding: t -*-
;; Loads docs/editors/adw.el as a user does, opens a spec and connects eglot, runs the spec's lens from its heading
;; (Start Parallel SDLC), sees the agents' progress lines and the workflow finish, scouts into a grep buffer in the
;; ranking, edits and saves a file of the new worktree, runs "Undo this file" from the changed line and sees the
;; buffer follow the disk through auto-revert-mode. Results go to the JSON file $ADW_RESULT.
;; run: ADW_PY=… ADW_ROOT=… ADW_RESULT=… ADW_SETUP=… emacs --batch -q -l emacs_scenario.el

(require 'json)
(setq adw-server-command (list (getenv "ADW_PY") "-m" "adw" "lsp" "--stdio"))
(load (getenv "ADW_SETUP") nil t)
(setq eglot-sync-connect t
      auto-revert-interval 0.5
      auto-revert-verbose nil)

(defvar adw-result (list :steps nil :logs nil :asked 0))
(defun adw-put (key value) (setq adw-result (plist-put adw-result key value)))
(defun adw-step (name) (adw-put :steps (vconcat (plist-get adw-result :steps) (list name))))

(cl-defmethod eglot-handle-notification :after
  (_server (_method (eql window/logMessage)) &key _type message)
  (adw-put :logs (vconcat (plist-get adw-result :logs) (list message))))
;; A line with several lenses asks through completing-read: count the questions.
(advice-add 'completing-read :before (lambda (&rest _) (adw-put :asked (1+ (plist-get adw-result :asked)))))

(defun adw-wait (what predicate seconds)
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.1))
    (unless (funcall predicate) (error "timed out waiting for %s" what))))

(defun adw-lens-line (prefix)
  (cl-loop for lens in (adw-lenses)
           when (string-prefix-p prefix (plist-get (plist-get lens :command) :title))
           return (plist-get (plist-get (plist-get lens :range) :start) :line)))

(defun adw-goto-line (line) (goto-char (point-min)) (forward-line line))

(defun adw-status (id)
  (eglot-execute-command (adw--server) "adw.server.status" (vector id)))

(defun adw-scenario ()
  (let* ((root (file-name-as-directory (getenv "ADW_ROOT")))
         (spec (expand-file-name "specs/multiply.md" root)))
    (find-file spec)
    (apply #'eglot (eglot--guess-contact))  ; what M-x eglot does in this buffer
    (adw-wait "eglot to connect" (lambda () (eglot-current-server)) 30)
    (adw-put :server (plist-get (eglot--server-info (adw--server)) :name))
    (adw-step "connected")

    ;; The spec's lenses sit on its heading; the lens there starts the SDLC.
    (adw-put :heading_line (save-excursion (goto-char (point-min)) (re-search-forward "^#") (1- (line-number-at-pos))))
    (adw-put :spec_lenses (vconcat (mapcar (lambda (l) (plist-get (plist-get l :command) :title)) (adw-lenses))))
    (adw-put :spec_lens_lines (vector (adw-lens-line "Start Parallel SDLC") (adw-lens-line "Scout")))
    (adw-goto-line (adw-lens-line "Start Parallel SDLC"))
    (cl-letf (((symbol-function 'completing-read) (lambda (&rest _) "Start Parallel SDLC")))
      (let* ((started (adw-lens))
             (id (plist-get (aref (plist-get started :workflows) 0) :id))
             status)
        (adw-step "started")
        (adw-wait "the workflow to finish"
                  (lambda () (setq status (adw-status id))
                    (not (member (plist-get status :state) '("pending" "running"))))
                  120)
        (adw-put :state (plist-get status :state))
        (adw-put :worktree (plist-get status :cwd))))
    (adw-step "finished")

    ;; The scout's ranking in a grep buffer, best first.
    (let ((report (adw-scout "multiply two numbers" 3)))
      (adw-put :ranking (vconcat (mapcar (lambda (loc) (format "%s:%d" (eglot--uri-to-path (plist-get loc :uri))
                                                               (1+ (plist-get (plist-get (plist-get loc :range) :start) :line))))
                                         (plist-get report :lspLocations))))
      (with-current-buffer "*adw scout*"
        (adw-put :scout_lines (vconcat (cl-remove-if-not (lambda (l) (string-match-p ":[0-9]+: #" l))
                                                         (split-string (buffer-string) "\n"))))))
    (adw-step "scouted")

    ;; A file of the new worktree: change its last line, save, undo it from the changed line.
    (find-file (expand-file-name "src/calc/multiply.py" (plist-get adw-result :worktree)))
    (adw-put :original (buffer-string))
    (goto-char (point-max))
    (skip-chars-backward "\n")
    (adw-put :changed_line (1- (line-number-at-pos)))
    (delete-region (line-beginning-position) (line-end-position))
    (insert "    return 0")
    (save-buffer)
    (adw-put :file_lenses (vconcat (mapcar (lambda (l) (plist-get (plist-get l :command) :title)) (adw-lenses))))
    (adw-put :undo_file_line (adw-lens-line "Undo this file"))
    (adw-goto-line (adw-lens-line "Undo this file"))
    (let ((asked (plist-get adw-result :asked))
          (undone (adw-lens)))
      (adw-put :undo_file_asked (- (plist-get adw-result :asked) asked))
      (adw-put :undo_path (plist-get undone :path)))
    (let ((file buffer-file-name))
      (adw-put :on_disk (with-temp-buffer (insert-file-contents file) (buffer-string))))
    ;; auto-revert-mode (global-auto-revert-mode in adw.el) brings the buffer back to the file on disk.
    (adw-wait "auto-revert" (lambda () (equal (buffer-string) (plist-get adw-result :on_disk))) 30)
    (adw-put :buffer (buffer-string))
    (adw-step "undone")))

(let ((ok t) (err nil))
  (condition-case failure (adw-scenario)
    (error (setq ok nil err (error-message-string failure))))
  (adw-put :ok (if ok t :json-false))
  (adw-put :error err)
  (ignore-errors (eglot-shutdown (adw--server)))
  (with-temp-file (getenv "ADW_RESULT")
    (insert (json-encode adw-result)))
  (kill-emacs (if ok 0 1)))
