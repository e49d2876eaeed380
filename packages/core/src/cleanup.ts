/**
 * What must not outlive an interrupted command: temporary folders, child
 * processes. Libraries register an undo step while the resource exists; the
 * CLI runs them all on SIGINT / SIGTERM before it exits (errors and normal
 * ends are handled by each owner's own `finally`).
 */
const tasks = new Set<() => void>();

/** Registers `undo` (synchronous: it may run inside a signal handler); returns the function that unregisters it. */
export function onInterrupt(undo: () => void): () => void {
  tasks.add(undo);
  return () => {
    tasks.delete(undo);
  };
}

/** Runs and forgets every registered undo step, newest first; one that throws does not stop the others. */
export function runInterruptCleanups(): void {
  for (const undo of [...tasks].reverse()) {
    tasks.delete(undo);
    try {
      undo();
    } catch {
      // best effort: the process is going away
    }
  }
}

/** Whether a process id belongs to a running process (for sweeping what dead processes left behind). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
