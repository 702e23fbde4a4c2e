/** Runs in every test file: temp directories go when the file is done. */
import { afterAll } from 'vitest';
import { removeTempDirs } from './files.js';

afterAll(removeTempDirs);
