;;; adw.el --- ADW with eglot (Emacs 28 + eglot 1.9, or Emacs 29+) -*- lexical-binding: t -*-
;; docs/EDITORS.md: `load' it from your init file, or copy it there. tests/lsp/emacs_scenario.el loads it as it is.
;;
;; Specs (Markdown) are managed by ADW's server. eglot runs one server per buffer, so code buffers keep their own
;; language server: `adw-lens' and `adw-scout' reach the repository's ADW server from any buffer. eglot shows no
;; code lenses itself; `adw-lens' (C-c a l) runs the one on the current line, asking only when a line has several.

(require 'cl-lib)
(require 'eglot)
(require 'grep)
(require 'project)

(defvar adw-server-command '("adw" "lsp" "--stdio")
  "How to start ADW's language server (set it before loading this file to use another Python).")

(add-to-list 'eglot-server-programs `((markdown-mode gfm-mode text-mode) . ,adw-server-command))
;; Emacs has no Markdown mode of its own: without the markdown-mode package, specs open in text-mode.
(unless (fboundp 'markdown-mode)
  (add-to-list 'auto-mode-alist '("\\.md\\'" . text-mode)))

(defun adw-project (dir)
  "The repository's main folder as DIR's project, so that its worktrees (…/repo.worktrees/name) share one server."
  (let ((common (ignore-errors
                  (car (process-lines "git" "-C" (expand-file-name dir) "rev-parse"
                                      "--path-format=absolute" "--git-common-dir")))))
    (when (and common (string-suffix-p "/.git" common))
      (cons 'transient (file-name-directory common)))))
(add-hook 'project-find-functions #'adw-project -50)

;; Files an undo rewrote on disk show at once in their buffers.
(global-auto-revert-mode 1)

;; Agents' progress: eglot 1.9 has no $/progress, so ADW sends log lines ("ADW add: build (claude): started").
(cl-defmethod eglot-handle-notification :after
  (_server (_method (eql window/logMessage)) &key _type message)
  (when (string-prefix-p "ADW" message)
    (message "%s" message)))

(defun adw--server ()
  (or (cl-find-if (lambda (server) (equal (plist-get (eglot--server-info server) :name) "adw"))
                  (gethash (project-current) eglot--servers-by-project))
      (user-error "ADW: no ADW server for this repository; open one of its specs and run M-x eglot")))

(defun adw-lenses ()
  "The ADW code lenses of the current buffer (as the server sees the file: save it first in a code buffer)."
  (append (jsonrpc-request (adw--server) :textDocument/codeLens
                           (list :textDocument (list :uri (eglot--path-to-uri buffer-file-name))))
          nil))

(defun adw-lens ()
  "Run the ADW code lens of the current line: Start Parallel SDLC on a spec's heading, Undo this file on its first
changed line, Undo/Checkpoint at the top of a worktree's files."
  (interactive)
  (let* ((line (1- (line-number-at-pos)))
         (here (cl-remove-if-not
                (lambda (lens) (= line (plist-get (plist-get (plist-get lens :range) :start) :line)))
                (adw-lenses)))
         (titles (mapcar (lambda (lens) (plist-get (plist-get lens :command) :title)) here))
         (title (cond ((null titles) (user-error "ADW: no lens on this line"))
                      ((null (cdr titles)) (car titles))
                      (t (completing-read "ADW: " titles nil t))))
         (command (plist-get (nth (cl-position title titles :test #'equal) here) :command))
         (result (eglot-execute-command (adw--server) (plist-get command :command)
                                        (plist-get command :arguments))))
    (when (and (listp result) (plist-get result :message))
      (message "ADW: %s" (plist-get result :message)))
    result))

(defun adw-scout (task &optional top)
  "Scout for TASK: the ranked locations in a grep buffer, best first (\\[next-error] walks them in order)."
  (interactive "sScout for: ")
  (let* ((report (eglot-execute-command (adw--server) "adw.server.scout" (vector task nil (or top 10))))
         (locations (append (plist-get report :locations) nil))
         (buffer (get-buffer-create "*adw scout*")))
    (with-current-buffer buffer
      (let ((inhibit-read-only t))
        (erase-buffer)
        (insert (format "ADW scout: %s\n\n" task))
        (cl-loop for loc across (plist-get report :lspLocations) for rank from 1
                 do (insert (format "%s:%d: #%d %s\n" (eglot--uri-to-path (plist-get loc :uri))
                                    (1+ (plist-get (plist-get (plist-get loc :range) :start) :line)) rank
                                    (or (plist-get (nth (1- rank) locations) :reason) ""))))
        (grep-mode)))
    (display-buffer buffer)
    report))

(global-set-key (kbd "C-c a l") #'adw-lens)
(global-set-key (kbd "C-c a s") #'adw-scout)

(provide 'adw)
;;; adw.el ends here
