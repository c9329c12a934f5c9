// Package refusal is p2ptun's wire contract for telling a peer why it was
// refused: the stream reset codes a listener sends (not allowed, rate
// limited, target down, closing) and the connection close code of a node
// whose access policy refuses the peer, each with its cause (the Reason of
// events, the cause label of metrics) and its sentinel error. Both sides
// use this one table: the listener to reset with a code, the forward and
// pipe to read the code back as an Error.
//
// kubo and other libp2p peers ignore the codes and see a plain reset or
// close. It imports nothing of ours.
package refusal
