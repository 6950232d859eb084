//! A parallel pass over the pool: the rows of a query are read in chunks on the calling thread
//! while the previous chunk is evaluated on the rayon workers, so reading SQLite (one thread) and
//! the per-row work (the rules, decontamination's n-grams) overlap. A chunk keeps its rows' values
//! in one buffer instead of a few `String`s per row: reading a million questions into owned
//! strings spent more time in malloc and page faults than in SQLite.

use std::fmt::Write;

use rayon::prelude::*;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// Rows per chunk.
const CHUNK: usize = 8192;

/// The values of `CHUNK` rows: text (integers written as decimals) or NULL.
struct Chunk {
    bytes: String,
    /// Per row and column: the value's span in `bytes`, or None for NULL.
    spans: Vec<Option<(u32, u32)>>,
    columns: usize,
}

impl Chunk {
    fn new(columns: usize) -> Chunk {
        Chunk {
            bytes: String::with_capacity(CHUNK * 256),
            spans: Vec::with_capacity(CHUNK * columns),
            columns,
        }
    }

    fn len(&self) -> usize {
        self.spans.len() / self.columns
    }

    fn row(&self, i: usize) -> Row<'_> {
        Row {
            chunk: self,
            spans: &self.spans[i * self.columns..(i + 1) * self.columns],
        }
    }
}

/// One row of a scan.
pub struct Row<'a> {
    chunk: &'a Chunk,
    spans: &'a [Option<(u32, u32)>],
}

impl<'a> Row<'a> {
    /// Column `i` as text (integers and reals as decimals); None for NULL.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.spans[i].map(|(a, b)| &self.chunk.bytes[a as usize..b as usize])
    }

    /// Column `i` as text, NULL as "".
    pub fn text(&self, i: usize) -> &'a str {
        self.get(i).unwrap_or("")
    }
}

/// Runs `sql` (no parameters) and calls `eval` on every row, in parallel; returns what it returned
/// for each row, in row order. Text must be UTF-8 (an error names the column otherwise); blobs are
/// an error.
pub fn par_scan<T: Send>(conn: &Connection, sql: &str, eval: impl Fn(&Row) -> Vec<T> + Sync) -> anyhow::Result<Vec<T>> {
    par_scan_counted(conn, sql, eval, &mut |_| {})
}

/// [`par_scan`], telling `progress` the rows read so far after each chunk (a step's progress bar).
pub fn par_scan_counted<T: Send>(
    conn: &Connection,
    sql: &str,
    eval: impl Fn(&Row) -> Vec<T> + Sync,
    progress: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<T>> {
    let mut st = conn.prepare(sql)?;
    let columns = st.column_count();
    if columns == 0 {
        anyhow::bail!("scan: `{sql}` returns no columns");
    }
    let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
    let mut rows = st.query([])?;
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(2);
    std::thread::scope(|scope| -> anyhow::Result<Vec<T>> {
        let eval = &eval;
        let worker = std::thread::Builder::new()
            .name("scan-eval".into())
            .spawn_scoped(scope, move || {
                let mut out: Vec<T> = Vec::new();
                for chunk in rx.iter() {
                    let part: Vec<T> = (0..chunk.len())
                        .into_par_iter()
                        .flat_map_iter(|i| eval(&chunk.row(i)))
                        .collect();
                    out.extend(part);
                }
                out
            })?;
        let read = (|| -> anyhow::Result<()> {
            let mut chunk = Chunk::new(columns);
            let mut row_no = 0usize;
            while let Some(r) = rows.next()? {
                row_no += 1;
                for (c, name) in names.iter().enumerate() {
                    let start = chunk.bytes.len();
                    let present = match r.get_ref(c)? {
                        ValueRef::Null => false,
                        ValueRef::Text(b) => {
                            let text = std::str::from_utf8(b).map_err(|e| {
                                anyhow::anyhow!("row {row_no}: column `{name}` is not UTF-8 text ({e})")
                            })?;
                            chunk.bytes.push_str(text);
                            true
                        }
                        // Numbers are written straight into the buffer (writing to a String
                        // cannot fail).
                        ValueRef::Integer(n) => write!(chunk.bytes, "{n}").is_ok(),
                        ValueRef::Real(x) => write!(chunk.bytes, "{x}").is_ok(),
                        ValueRef::Blob(_) => anyhow::bail!("row {row_no}: column `{name}` holds a blob, not text"),
                    };
                    let end = chunk.bytes.len();
                    chunk.spans.push(present.then_some((start as u32, end as u32)));
                }
                // Spans are u32: a chunk is sent before its text reaches 4 GiB.
                if chunk.len() >= CHUNK || chunk.bytes.len() > (u32::MAX as usize) / 2 {
                    let full = std::mem::replace(&mut chunk, Chunk::new(columns));
                    if tx.send(full).is_err() {
                        break;
                    }
                    progress(row_no);
                }
            }
            if chunk.len() > 0 {
                let _ = tx.send(chunk);
            }
            Ok(())
        })();
        drop(tx);
        let out = worker
            .join()
            .map_err(|_| anyhow::anyhow!("scan: the evaluating thread panicked"))?;
        read?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_in_order_with_nulls_and_numbers() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)")
            .unwrap();
        let n = 3 * CHUNK + 17;
        {
            let mut ins = conn.prepare("INSERT INTO t (a, b) VALUES (?1, ?2)").unwrap();
            for i in 0..n {
                let a = (i % 5 != 0).then(|| format!("row {i} ü"));
                ins.execute(rusqlite::params![a, i as i64 * 2]).unwrap();
            }
        }
        let mut read = Vec::new();
        let got = par_scan_counted(
            &conn,
            "SELECT id, a, b FROM t ORDER BY id",
            |r| {
                vec![(
                    r.text(0).parse::<usize>().unwrap(),
                    r.get(1).map(str::to_string),
                    r.text(2).to_string(),
                )]
            },
            &mut |n| read.push(n),
        )
        .unwrap();
        assert_eq!(got.len(), n);
        // The rows read, after each full chunk (the step says the end).
        assert_eq!(read, [CHUNK, 2 * CHUNK, 3 * CHUNK]);
        for (i, (id, a, b)) in got.iter().enumerate() {
            assert_eq!(*id, i + 1);
            assert_eq!(a.as_deref(), (i % 5 != 0).then(|| format!("row {i} ü")).as_deref());
            assert_eq!(*b, (i * 2).to_string());
        }
        let none = par_scan(&conn, "SELECT a FROM t WHERE 0", |_| vec![1]).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_blob_is_an_error_naming_its_column() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (q); INSERT INTO t VALUES (x'00ff');")
            .unwrap();
        let e = par_scan(&conn, "SELECT q FROM t", |_| vec![()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`q`"), "{e}");
    }
}
