import { benchCatchUp } from './catch-up.ts';
import { markdownTable } from './lib.ts';

console.log(markdownTable([await benchCatchUp(process.argv[2] as 'postgres')]));
