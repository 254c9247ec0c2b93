/** One line of `npm run bench`. */
export interface BenchLine {
  name: string;
  value: number;
  unit: string;
  note?: string;
}
