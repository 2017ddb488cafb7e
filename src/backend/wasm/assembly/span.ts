// How a kernel's work splits into tasks: fixed by the sizes and the task count alone, never by the thread running it.

/** Elements [start, end) of task `task` of `tasks` over n, in chunks that are whole 4-lane vectors. */
export function spanStart(n: i32, task: i32, tasks: i32): i32 {
  return min(n, task * (((n + tasks - 1) / tasks + 3) & ~3));
}

export function spanEnd(n: i32, task: i32, tasks: i32): i32 {
  return min(n, (task + 1) * (((n + tasks - 1) / tasks + 3) & ~3));
}

/** First row of task `task` of `tasks` over n rows (task = tasks gives n). */
export function spanRows(n: i32, task: i32, tasks: i32): i32 {
  return <i32>((<i64>n * <i64>task) / <i64>tasks);
}
