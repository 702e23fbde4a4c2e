/** An independent Parquet reader for assertions: DuckDB, in memory. */
import { DuckDBInstance } from '@duckdb/node-api';

/** Runs SQL in a throwaway in-memory DuckDB and returns the rows as plain JS objects. */
export async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A DuckDB string literal. */
export function dlit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
