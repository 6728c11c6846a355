/* true.c: the static payload of PoolStorm beside /bin/true: it exits 0
 * at once, so that the storm times the sandboxes, not a dynamic program's
 * start (about 1.2 ms of this VM's time for /bin/true, see payloadCC). */
int main(void)
{
	return 0;
}
